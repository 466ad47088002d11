// Package apisurface lists the exported API of Go packages, one
// declaration per line, in a form that compares across modules: package
// paths are shortened to their last element (a trailing major version such
// as v3 dropped), parameter names are left out and interface{} is written
// any. raftcore's tests use it to check that its API is a superset of etcd
// raft v3.6's (see surface_test.go).
package apisurface

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/importer"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
)

// Dump type-checks pkgs (import paths, resolved in the module at dir) from
// their export data and returns their exported declarations, sorted. A
// struct field's line ends with "  #N", its position among the fields.
func Dump(dir string, pkgs ...string) ([]string, error) {
	cmd := exec.Command("go", append([]string{"list", "-export", "-deps", "-json=ImportPath,Export"}, pkgs...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v: %s", err, stderr.String())
	}
	exports := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct{ ImportPath, Export string }
		if err := dec.Decode(&p); err != nil {
			return nil, err
		}
		exports[p.ImportPath] = p.Export
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(p string) (io.ReadCloser, error) {
		f, ok := exports[p]
		if !ok || f == "" {
			return nil, fmt.Errorf("no export data for %s", p)
		}
		return os.Open(f)
	})
	var lines []string
	for _, p := range pkgs {
		pkg, err := imp.Import(p)
		if err != nil {
			return nil, err
		}
		lines = append(lines, dumpPackage(pkg)...)
	}
	sort.Strings(lines)
	return lines, nil
}

// shortName is the name a package is known by in the listing.
func shortName(p *types.Package) string {
	name := path.Base(p.Path())
	if len(name) > 1 && name[0] == 'v' && strings.Trim(name[1:], "0123456789") == "" {
		name = path.Base(path.Dir(p.Path()))
	}
	return name
}

func typeString(t types.Type) string {
	if sig, ok := t.(*types.Signature); ok {
		return "func" + signature(sig)
	}
	return strings.ReplaceAll(types.TypeString(t, shortName), "interface{}", "any")
}

// signature renders a function type without parameter names.
func signature(s *types.Signature) string {
	var b strings.Builder
	b.WriteString("(")
	for i := 0; i < s.Params().Len(); i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		t := s.Params().At(i).Type()
		if s.Variadic() && i == s.Params().Len()-1 {
			b.WriteString("..." + typeString(t.(*types.Slice).Elem()))
		} else {
			b.WriteString(typeString(t))
		}
	}
	b.WriteString(")")
	if n := s.Results().Len(); n > 0 {
		b.WriteString(" (")
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(typeString(s.Results().At(i).Type()))
		}
		b.WriteString(")")
	}
	return b.String()
}

func dumpPackage(pkg *types.Package) []string {
	var lines []string
	name := shortName(pkg)
	add := func(format string, args ...any) {
		lines = append(lines, name+": "+fmt.Sprintf(format, args...))
	}
	scope := pkg.Scope()
	for _, n := range scope.Names() {
		obj := scope.Lookup(n)
		if !obj.Exported() {
			continue
		}
		switch obj := obj.(type) {
		case *types.Const:
			add("const %s %s", obj.Name(), typeString(obj.Type()))
		case *types.Var:
			add("var %s %s", obj.Name(), typeString(obj.Type()))
		case *types.Func:
			add("func %s%s", obj.Name(), signature(obj.Type().(*types.Signature)))
		case *types.TypeName:
			dumpType(obj, add)
		}
	}
	return lines
}

func dumpType(obj *types.TypeName, add func(string, ...any)) {
	kind := "type"
	if obj.IsAlias() {
		kind = "alias"
	}
	switch u := obj.Type().Underlying().(type) {
	case *types.Struct:
		add("%s %s struct", kind, obj.Name())
		for i := 0; i < u.NumFields(); i++ {
			f := u.Field(i)
			if !f.Exported() {
				continue
			}
			embedded := ""
			if f.Embedded() {
				embedded = " (embedded)"
			}
			add("field %s.%s %s%s  #%d", obj.Name(), f.Name(), typeString(f.Type()), embedded, i)
		}
	case *types.Interface:
		add("%s %s interface", kind, obj.Name())
		for i := 0; i < u.NumMethods(); i++ {
			m := u.Method(i)
			add("imethod %s.%s%s", obj.Name(), m.Name(), signature(m.Type().(*types.Signature)))
		}
		return
	default:
		add("%s %s %s", kind, obj.Name(), typeString(u))
	}
	methods := types.NewMethodSet(types.NewPointer(obj.Type()))
	for i := 0; i < methods.Len(); i++ {
		m := methods.At(i).Obj()
		if !m.Exported() {
			continue
		}
		sig := m.Type().(*types.Signature)
		recv := obj.Name()
		if _, ptr := sig.Recv().Type().(*types.Pointer); ptr {
			recv = "*" + recv
		}
		add("method (%s) %s%s", recv, m.Name(), signature(sig))
	}
}
