package driver

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

const noFollow = syscall.O_NOFOLLOW

// WriteArchive writes the tree under dir as a gzip-compressed tar stream to w: directories,
// regular files and symbolic links, with their modes, owners and modification times. It
// returns the number of content bytes archived (the sum of the regular files' sizes).
func WriteArchive(dir string, w io.Writer) (int64, error) {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		case info.IsDir(), info.Mode().IsRegular():
		default:
			return nil // sockets, fifos and devices are not volume data
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		hdr.Format = tar.FormatPAX // keeps sub-second modification times
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := io.Copy(tw, f)
		total += n
		return err
	})
	if err != nil {
		return total, err
	}
	if err := tw.Close(); err != nil {
		return total, err
	}
	return total, gz.Close()
}

// ExtractArchive fills dir (which must exist) from a stream that WriteArchive wrote. Entries
// that would land outside dir (absolute names, "..", paths through a symbolic link) and
// entry types other than directories, regular files and symbolic links are refused.
func ExtractArchive(r io.Reader, dir string) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("not a gzip archive: %w", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	type dirTimes struct {
		path string
		hdr  *tar.Header
	}
	var dirs []dirTimes
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		target, err := entryPath(dir, hdr.Name)
		if err != nil {
			return err
		}
		if target == dir {
			continue
		}
		if err := noSymlinkParents(dir, target); err != nil {
			return err
		}
		mode := fs.FileMode(hdr.Mode).Perm() | fs.FileMode(hdr.Mode)&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirTimes{target, hdr})
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|noFollow, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if err := applyMeta(target, hdr, mode); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
			_ = os.Lchown(target, hdr.Uid, hdr.Gid)
		default:
			return fmt.Errorf("archive entry %q: type %q is not allowed", hdr.Name, hdr.Typeflag)
		}
	}
	// Directory modes and times last: writing their entries changed the times, and a
	// read-only directory could not have been filled.
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		mode := fs.FileMode(d.hdr.Mode).Perm() | fs.FileMode(d.hdr.Mode)&(fs.ModeSetgid|fs.ModeSticky)
		if err := applyMeta(d.path, d.hdr, mode); err != nil {
			return err
		}
	}
	return nil
}

func applyMeta(p string, hdr *tar.Header, mode fs.FileMode) error {
	_ = os.Lchown(p, hdr.Uid, hdr.Gid) // root keeps owners; another user keeps its own
	if err := os.Chmod(p, mode); err != nil {
		return err
	}
	return os.Chtimes(p, hdr.ModTime, hdr.ModTime)
}

// entryPath is where an archive entry named name lands under dir, or an error if it would
// land outside it.
func entryPath(dir, name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") {
		return "", fmt.Errorf("archive entry %q: not a relative path", name)
	}
	clean := path.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("archive entry %q: outside the volume", name)
	}
	return filepath.Join(dir, filepath.FromSlash(clean)), nil
}

// noSymlinkParents refuses a target whose parent directories (below dir) include a
// symbolic link: writing through it could reach outside the volume.
func noSymlinkParents(dir, target string) error {
	rel, err := filepath.Rel(dir, filepath.Dir(target))
	if err != nil {
		return err
	}
	if rel == "." {
		return nil
	}
	cur := dir
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		info, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("archive entry %q: a parent is a symbolic link", target)
		}
	}
	return nil
}

// CopyTree fills dst (which must exist) with a copy of the tree under src, through the
// same archive format (a clone is a snapshot restored at once).
func CopyTree(src, dst string) error {
	pr, pw := io.Pipe()
	go func() {
		_, err := WriteArchive(src, pw)
		pw.CloseWithError(err)
	}()
	err := ExtractArchive(pr, dst)
	pr.CloseWithError(err)
	return err
}
