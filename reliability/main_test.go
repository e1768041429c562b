package reliability

import (
	"flag"
	"os"
	"testing"
)

// oParallel is how many scenarios run at once unless -parallel is given.
// They share nothing but the machine and spend most of their time waiting
// for a hub, a simulator or a deadline, so on 2 cores three at a time
// keep the package's time down without starving any (go test's default
// is GOMAXPROCS, 2 here).
const oParallel = "3"

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", oParallel)
	}
	os.Exit(m.Run())
}
