package driver

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tree describes a directory: relative path -> "d" (dir), "l:TARGET" (symlink) or
// "f:MODE:CONTENT" digest, with the mtime of regular files.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "l:" + target
		case info.IsDir():
			out[rel] = fmt.Sprintf("d:%o", info.Mode().Perm())
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = fmt.Sprintf("f:%o:%x:%d", info.Mode().Perm(), sha256.Sum256(data), info.ModTime().Unix())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fill(t *testing.T, dir string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "a/b/c"), 0o755))
	must(os.Mkdir(filepath.Join(dir, "empty"), 0o700))
	must(os.WriteFile(filepath.Join(dir, "top.txt"), []byte("hello"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "a/b/c/big.bin"), bytes.Repeat([]byte{1, 2, 3}, 100000), 0o600))
	must(os.WriteFile(filepath.Join(dir, "a/run.sh"), []byte("#!/bin/sh\n"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "a/zero"), nil, 0o644))
	must(os.Symlink("b/c/big.bin", filepath.Join(dir, "a/link")))
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	must(os.Chtimes(filepath.Join(dir, "top.txt"), old, old))
	must(os.Chmod(filepath.Join(dir, "a/b"), 0o555)) // read-only dir must still be restorable
}

func TestArchiveRoundTrip(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	fill(t, src)
	defer os.Chmod(filepath.Join(src, "a/b"), 0o755)
	defer os.Chmod(filepath.Join(dst, "a/b"), 0o755)
	var buf bytes.Buffer
	n, err := WriteArchive(src, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(5 + 300000 + 10); n != want {
		t.Errorf("archived %d content bytes, want %d", n, want)
	}
	if err := ExtractArchive(&buf, dst); err != nil {
		t.Fatal(err)
	}
	got, want := tree(t, dst), tree(t, src)
	if len(got) != len(want) {
		t.Errorf("restored %d entries, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: restored %q, want %q", k, got[k], v)
		}
	}
}

func TestCopyTree(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	fill(t, src)
	defer os.Chmod(filepath.Join(src, "a/b"), 0o755)
	defer os.Chmod(filepath.Join(dst, "a/b"), 0o755)
	if err := CopyTree(src, dst); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(tree(t, dst)), fmt.Sprint(tree(t, src)); got != want {
		t.Errorf("copy differs:\n%s\n%s", got, want)
	}
}

type entry struct {
	name, link string
	typ        byte
	body       string
}

func archive(t *testing.T, entries ...entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	tw.Close()
	gz.Close()
	return &buf
}

func TestExtractRefusesEscapes(t *testing.T) {
	cases := map[string][]entry{
		"dotdot":   {{name: "../evil", typ: tar.TypeReg, body: "x"}},
		"nested":   {{name: "a/../../evil", typ: tar.TypeReg, body: "x"}},
		"absolute": {{name: "/tmp/evil", typ: tar.TypeReg, body: "x"}},
		"through symlink": {
			{name: "out", link: "..", typ: tar.TypeSymlink},
			{name: "out/evil", typ: tar.TypeReg, body: "x"},
		},
		"file over symlink": {
			{name: "f", link: "../evil", typ: tar.TypeSymlink},
			{name: "f", typ: tar.TypeReg, body: "x"},
		},
		"hard link": {{name: "h", link: "/etc/passwd", typ: tar.TypeLink}},
		"device":    {{name: "dev", typ: tar.TypeChar}},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "vol")
			if err := os.Mkdir(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			err := ExtractArchive(archive(t, entries...), dst)
			if err == nil {
				t.Fatal("extraction succeeded")
			}
			if _, err := os.Lstat(filepath.Join(parent, "evil")); err == nil {
				t.Fatal("a file was written outside the volume")
			}
		})
	}
}

func TestExtractRefusesGarbage(t *testing.T) {
	err := ExtractArchive(strings.NewReader("not an archive"), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Fatalf("got %v", err)
	}
}
