// The build module of the ai-infra-redis-exporter image: it only pins
// github.com/oliver006/redis_exporter (the tool line) and, in go.sum, the hash of every
// module the binary is built from, so the image build needs no checksum-database lookup.
// The checksum database reachable from this project's machines does not answer for
// redis_exporter; its go.sum lines were taken from the module proxy's v1.62.0 zip, whose
// files are identical to the v1.62.0 tag of github.com/oliver006/redis_exporter
// (commit 620cb9964b0d7d7033fe5f9858e0952b7269de4d). Every other line is verified by
// sum.golang.org as usual. To move to another version:
//   GONOSUMDB=github.com/oliver006/redis_exporter go get -tool github.com/oliver006/redis_exporter@vX.Y.Z
//   go mod tidy    (and set REDIS_EXPORTER_VERSION and the version label in the Dockerfile)
module ai-infra-matrix/images/redis-exporter

go 1.24

tool github.com/oliver006/redis_exporter

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.2.0 // indirect
	github.com/gomodule/redigo v1.9.2 // indirect
	github.com/mna/redisc v1.4.0 // indirect
	github.com/oliver006/redis_exporter v1.62.0 // indirect
	github.com/prometheus/client_golang v1.19.1 // indirect
	github.com/prometheus/client_model v0.6.1 // indirect
	github.com/prometheus/common v0.48.0 // indirect
	github.com/prometheus/procfs v0.12.0 // indirect
	github.com/sirupsen/logrus v1.9.3 // indirect
	golang.org/x/sys v0.17.0 // indirect
	google.golang.org/protobuf v1.33.0 // indirect
)
