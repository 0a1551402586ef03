package recipients

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrOutsideRoot is the error Confine wraps for a path that leaves the root.
var ErrOutsideRoot = errors.New("outside the spec root")

// maxLinks bounds the symbolic links Confine follows, as the kernel does
// (a loop of links would never end).
const maxLinks = 255

// Confine returns path resolved (absolute, with every symbolic link
// followed) when it lies within root, the directory every file of a spec
// must stay under, or root itself. Otherwise it returns an error wrapping
// ErrOutsideRoot that names the path, the root and the fix. "-" (standard
// input) is always allowed and returned as it is.
//
// A relative path is taken from the working directory, as os.Open takes it.
// Links are followed the way the kernel follows them, so neither ../ nor a
// link can leave the root; a file that does not exist yet is judged by the
// deepest folder that does. The file is not opened, and nothing of its
// contents is ever in the error.
//
// Confine checks a path before it is opened: a link changed between the two
// is not seen. An empty root is an error: callers that do not confine do
// not call Confine.
//
//	path, err := campaigns.Confine("/srv/specs", spec.RecipientsPath())
//	if errors.Is(err, campaigns.ErrOutsideRoot) { ... }
func Confine(root, path string) (string, error) {
	if path == "-" {
		return path, nil
	}
	if root == "" {
		return "", errors.New("confine: no spec root")
	}
	realRoot, err := filepath.Abs(root)
	if err == nil {
		realRoot, err = filepath.EvalSymlinks(realRoot)
	}
	if err != nil {
		return "", fmt.Errorf("spec root %s: %w", root, err)
	}
	real, err := resolve(path)
	if err != nil {
		return "", err
	}
	if within(realRoot, real) {
		return real, nil
	}
	via := ""
	if abs, err := filepath.Abs(path); err == nil && abs != real {
		via = " (it leads to " + real + ")"
	}
	return "", fmt.Errorf("%s%s is %w %s: move the file under %s, or unset FANOUT_SPEC_ROOT", path, via, ErrOutsideRoot, root, root)
}

// within reports whether p is dir or below it; both are clean and absolute.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// resolve makes path absolute and follows its links one element at a time,
// as the kernel does: "link/.." is the folder above the link's target, not
// the folder holding the link, which filepath.Clean would give. Elements
// that do not exist are kept as they are.
func resolve(path string) (string, error) {
	sep := string(filepath.Separator)
	if !filepath.IsAbs(path) {
		wd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", path, err)
		}
		path = wd + sep + path // not Join: it would clean the ../ away
	}
	vol := filepath.VolumeName(path)
	dest := vol + sep
	pending := split(path[len(vol):])
	links := 0
	for len(pending) > 0 {
		elem := pending[0]
		pending = pending[1:]
		switch elem {
		case "", ".":
			continue
		case "..":
			dest = filepath.Dir(dest)
			continue
		}
		next := filepath.Join(dest, elem)
		fi, err := os.Lstat(next)
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
			dest = next // a file to create, or a path the open will refuse
			continue
		case err != nil:
			return "", fmt.Errorf("resolve %s: %w", path, err)
		case fi.Mode()&fs.ModeSymlink == 0:
			dest = next
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("resolve %s: more than %d symbolic links", path, maxLinks)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", path, err)
		}
		if filepath.IsAbs(target) {
			v := filepath.VolumeName(target)
			dest, target = v+sep, target[len(v):]
		}
		pending = append(split(target), pending...)
	}
	return dest, nil
}

// split cuts a path into its elements, keeping "." and "..".
func split(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == filepath.Separator })
}
