//go:build tools

// Keeps the Pulumi CLI package in go.mod/go.sum for `go mod tidy`; the CLI
// itself is built with `go build github.com/pulumi/pulumi/pkg/v3/cmd/pulumi`.
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
