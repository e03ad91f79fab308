package safetext_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// presentation are the packages that write to an operator's terminal,
// relative to this package's directory.
var presentation = []string{"../../tui", "../../cmd/meshtop/internal/cli", "../../cmd/meshtop/internal/serve"}

// sanitizers are the calls an error's text may be passed to (directly or
// inside a larger expression): they put it on one sanitized line, or keep it
// an error.
var sanitizers = map[string]bool{"oneLine": true, "safetext.Line": true, "setStatus": true, "Message": true,
	"fmt.Errorf": true, "errors.New": true}

// errorTextAllowed are functions that read an error's text without
// printing it.
var errorTextAllowed = map[string]bool{
	"tui/commands.go:isConnErr":         true, // classifies the error by its message
	"cli/root.go:(*exitError).Error":    true, // an error's own Error method
	"cli/root.go:(*replicaError).Error": true,
	"serve/log.go:redactAttr":           true, // an error attribute of a log line: redacted, then quoted by slog
	"serve/keys.go:(*keyFile).has":      true, // compares a reload error with the last one, to log it once
}

// TestPresentationUsesSanitizedText reads the sources of the dashboard and
// the command line and fails when they ask a safetext.Text for its exact
// bytes (Raw) — renderers print String, JSON marshals the Text itself — or
// take an error's text (which quotes the database) anywhere but into a
// sanitizer. Together with the store's TestDisplayTypesCarryText this is the
// rule of docs/SECURITY.md made mechanical.
func TestPresentationUsesSanitizedText(t *testing.T) {
	for _, dir := range presentation {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s (%v)", dir, err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			checkFile(t, path)
		}
	}
}

func checkFile(t *testing.T, path string) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	short := filepath.Base(filepath.Dir(path)) + "/" + filepath.Base(path)
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok {
			continue
		}
		fn := short + ":" + funcName(fd)
		var stack []string // names of the calls enclosing the node
		var visit func(n ast.Node) bool
		visit = func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			name := callName(call.Fun)
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok && len(call.Args) == 0 {
				switch sel.Sel.Name {
				case "Raw":
					t.Errorf("%s: %s calls Raw(): print the Text (its String is sanitized)", fset.Position(call.Pos()), fn)
				case "Error":
					if !errorTextAllowed[fn] && !enclosedBy(stack) {
						t.Errorf("%s: %s prints an error's text unsanitized: pass it to oneLine/safetext.Line", fset.Position(call.Pos()), fn)
					}
				}
			}
			ast.Inspect(call.Fun, visit)
			stack = append(stack, name)
			for _, a := range call.Args {
				ast.Inspect(a, visit)
			}
			stack = stack[:len(stack)-1]
			return false
		}
		ast.Inspect(fd.Body, visit)
	}
}

func enclosedBy(stack []string) bool {
	for _, s := range stack {
		if sanitizers[s] {
			return true
		}
	}
	return false
}

// callName is "pkg.Func", "Func" or the method name of a call.
func callName(fun ast.Expr) string {
	switch f := fun.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		if x, ok := f.X.(*ast.Ident); ok && (x.Name == "fmt" || x.Name == "errors" || x.Name == "safetext") {
			return x.Name + "." + f.Sel.Name
		}
		return f.Sel.Name
	}
	return ""
}

func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	var recv string
	switch r := fd.Recv.List[0].Type.(type) {
	case *ast.StarExpr:
		if id, ok := r.X.(*ast.Ident); ok {
			recv = "(*" + id.Name + ")"
		}
	case *ast.Ident:
		recv = r.Name
	}
	return recv + "." + fd.Name.Name
}
