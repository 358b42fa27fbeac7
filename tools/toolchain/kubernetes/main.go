// Wrapper main for the pulumi-kubernetes provider module pinned in go.mod.
// tools/toolchain.sh copies this directory to its cache, writes the two embed
// files (generated from the module's schema.json / terraform-mapping.json, which
// are gitignored upstream and so not in the module zip) and builds it there.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
