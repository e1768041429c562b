// Command samhub-bench-peer is the reference engine for `make bench`:
// Benthos v4.27.0 (MIT, the last release before it became Redpanda
// Connect) built with only the components the benchmark flow needs — io
// (file input, http_client output), pure (mapping, bloblang), nats
// (nats_jetstream input/output) and xml (in the pure "extended" set). It is
// its own module so Benthos never enters the hub's go.mod.
//
// Run it like the benthos binary: samhub-bench-peer streams a.yaml b.yaml
package main

import (
	"context"

	"github.com/benthosdev/benthos/v4/public/service"

	_ "github.com/benthosdev/benthos/v4/public/components/io"
	_ "github.com/benthosdev/benthos/v4/public/components/nats"
	_ "github.com/benthosdev/benthos/v4/public/components/pure"
	_ "github.com/benthosdev/benthos/v4/public/components/pure/extended"
)

func main() { service.RunCLI(context.Background()) }
