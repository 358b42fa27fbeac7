"""A consuming project: reads the ai-infra-matrix stack outputs through a StackReference,
as an application team's Pulumi program would, and derives what its services need."""

import pulumi

config = pulumi.Config()
# Fully qualified: <organization>/ai-infra-matrix/<stack>; "organization" on a local backend.
platform = pulumi.StackReference(config.get("platformStack") or f"organization/ai-infra-matrix/{pulumi.get_stack()}")


def output(name: str) -> pulumi.Output:
    # require_output fails the deployment when the platform stops exporting a key.
    return platform.require_output(name)


database_url = pulumi.Output.format(
    "postgresql://{0}:{1}@{2}:{3}/{4}",
    output("postgresUser"),
    output("postgresPassword"),  # a secret output: the URL stays secret too
    output("postgresPrimaryHost"),
    output("postgresPort"),
    output("postgresDatabase"),
)

pulumi.export("platformNamespace", output("namespace"))
pulumi.export("backendUrl", pulumi.Output.format("http://{0}:{1}", output("backendHost"), output("backendPort")))
pulumi.export("entryPoint", pulumi.Output.format("http://{0}:{1}", output("nginxHost"), output("nginxPort")))
pulumi.export("kafkaBootstrapServers", output("kafkaBootstrapServers"))
pulumi.export("redisSeed", pulumi.Output.format("{0}:{1}", output("redisSeedHost"), output("redisPort")))
pulumi.export("databaseUrl", database_url)
