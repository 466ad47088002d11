package raft_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var updateReadme = flag.Bool("update-readme", false, "TestREADMEGoBlocks: rewrite README.md's Go blocks from the example regions")

// regionMarker and endMarker delimit a region of an example that README.md
// shows; exampleMarker names, on the line before a ```go fence in
// README.md, the region the block shows.
var (
	regionMarker  = regexp.MustCompile(`^\s*// readme:begin ([a-z0-9-]+)$`)
	endMarker     = regexp.MustCompile(`^\s*// readme:end$`)
	exampleMarker = regexp.MustCompile(`^<!-- example: ([a-z0-9-]+) -->$`)
)

// Every Go block of README.md is a region of an example test (so it
// compiles and runs in go test), named by an "<!-- example: NAME -->" line
// just before it, and every region is shown once. With -update-readme the
// blocks are rewritten from the regions.
func TestREADMEGoBlocks(t *testing.T) {
	regions := readmeRegions(t)
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	var out []string
	shown := map[string]bool{}
	for i := 0; i < len(lines); i++ {
		out = append(out, lines[i])
		if lines[i] != "```go" {
			continue
		}
		end := i + 1
		for end < len(lines) && lines[end] != "```" {
			end++
		}
		block := lines[i+1 : end]
		var name string
		if i > 0 {
			if m := exampleMarker.FindStringSubmatch(lines[i-1]); m != nil {
				name = m[1]
			}
		}
		region, ok := regions[name]
		switch {
		case name == "":
			t.Errorf("README.md:%d: a Go block without an <!-- example: NAME --> line before it", i+1)
		case !ok:
			t.Errorf("README.md:%d: no example region %q (a // readme:begin %s line in a *_test.go file)", i+1, name, name)
		case shown[name]:
			t.Errorf("README.md:%d: region %q shown twice", i+1, name)
		case *updateReadme:
			block = region.lines
		case !slicesEqual(dedent(block), region.lines):
			t.Errorf("README.md:%d: the block differs from region %q in %s (edit the example and run go test -run TestREADMEGoBlocks -update-readme):\n%s",
				i+1, name, region.file, firstDifference(dedent(block), region.lines))
		}
		shown[name] = true
		out = append(out, block...)
		i = end - 1
	}
	for name, r := range regions {
		if !shown[name] {
			t.Errorf("%s: region %q is not shown in README.md", r.file, name)
		}
	}
	if *updateReadme && !t.Failed() {
		if err := os.WriteFile("README.md", []byte(strings.Join(out, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type readmeRegion struct {
	file  string
	lines []string // dedented
}

// readmeRegions collects the regions of the package's test files.
func readmeRegions(t *testing.T) map[string]readmeRegion {
	t.Helper()
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	regions := map[string]readmeRegion{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var name string
		var body []string
		for n, line := range strings.Split(string(raw), "\n") {
			switch m := regionMarker.FindStringSubmatch(line); {
			case m != nil:
				if name != "" {
					t.Fatalf("%s:%d: region %q begins inside region %q", f, n+1, m[1], name)
				}
				if _, dup := regions[m[1]]; dup {
					t.Fatalf("%s:%d: a second region %q", f, n+1, m[1])
				}
				name, body = m[1], nil
			case endMarker.MatchString(line):
				if name == "" {
					t.Fatalf("%s:%d: readme:end outside a region", f, n+1)
				}
				regions[name] = readmeRegion{file: f, lines: dedent(body)}
				name = ""
			case name != "":
				body = append(body, line)
			}
		}
		if name != "" {
			t.Fatalf("%s: region %q has no readme:end", f, name)
		}
	}
	return regions
}

// dedent removes the tabs that every non-empty line starts with.
func dedent(lines []string) []string {
	common := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, "\t"))
		if common < 0 || n < common {
			common = n
		}
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		out[i] = l[max(common, 0):]
	}
	return out
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// firstDifference describes where two blocks of lines first differ.
func firstDifference(readme, example []string) string {
	for i := 0; i < max(len(readme), len(example)); i++ {
		var r, e string
		if i < len(readme) {
			r = readme[i]
		}
		if i < len(example) {
			e = example[i]
		}
		if r != e || i >= len(readme) || i >= len(example) {
			return fmt.Sprintf("line %d of the block:\n  README:  %q\n  example: %q", i+1, r, e)
		}
	}
	return "no difference"
}
