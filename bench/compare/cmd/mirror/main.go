// Command mirror writes the etcd raft copy of the comparison workloads (see
// package internal/mirror). go generate runs it from the module's directory.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/raftcore/raft/bench/compare/internal/mirror"
)

func main() {
	in := flag.String("in", "workloads_raftcore.go", "source written against raftcore")
	out := flag.String("out", "workloads_etcd_gen.go", "generated etcd raft copy")
	flag.Parse()
	src, err := os.ReadFile(*in)
	if err != nil {
		log.Fatal(err)
	}
	gen, err := mirror.Rewrite(*in, src)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, gen, 0o644); err != nil {
		log.Fatal(err)
	}
}
