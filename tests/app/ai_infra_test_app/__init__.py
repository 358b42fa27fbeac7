"""ai-infra-test-app: the stand-in for the AI Infra Matrix application in tests.

One image serves as backend, frontend and nginx of the local cluster's dev stack: it
answers the probe paths the settings configure on the port given by PORT, and its
self-check really uses the DB_*, REDIS_* and KAFKA_* env the backend is given (one row in
PostgreSQL, one key per Redis Cluster shard, one Kafka message), so a test proves the
backend reaches its dependencies through the Services and NetworkPolicies.
"""
