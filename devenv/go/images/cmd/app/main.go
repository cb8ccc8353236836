// app: the demo application of the local clusters.
//
//	app [serve] [--listen :8080]                 serve HTTP (the default)
//	app write --dir D --files N --bytes B         write N files of random content, B bytes in all
//	app checksum --dir D                          print "<sha256>  <relative path>" per file, sorted
package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
)

func main() {
	args := os.Args[1:]
	command := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		command, args = args[0], args[1:]
	}
	var err error
	switch command {
	case "serve":
		err = serve(args)
	case "write":
		err = write(args)
	case "checksum":
		err = checksum(args, os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q (serve, write, checksum)", command)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	flags := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := flags.String("listen", ":8080", "address to listen on")
	if err := flags.Parse(args); err != nil {
		return err
	}
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		log.Printf("%s %s from %s", r.Method, r.URL.Path, r.RemoteAddr)
		fmt.Fprintf(w, "palette demo app on %s\n", host)
	})
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
		<-stop
		log.Print("stopping")
		os.Exit(0)
	}()
	log.Printf("serving HTTP on %s", *listen)
	return http.ListenAndServe(*listen, mux)
}

func write(args []string) error {
	flags := flag.NewFlagSet("write", flag.ContinueOnError)
	dir := flags.String("dir", "", "directory to write into (created if missing)")
	files := flags.Int("files", 1, "number of files")
	total := flags.Int64("bytes", 1024, "bytes in all, spread over the files")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *files < 1 || *total < 0 {
		return fmt.Errorf("write needs --dir, --files >= 1 and --bytes >= 0")
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	each, rest := *total/int64(*files), *total%int64(*files)
	for i := 0; i < *files; i++ {
		size := each
		if int64(i) < rest {
			size++
		}
		name := filepath.Join(*dir, fmt.Sprintf("file-%05d.bin", i))
		if err := writeRandom(name, size); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %d files, %d bytes, into %s\n", *files, *total, *dir)
	return nil
}

func writeRandom(name string, size int64) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func checksum(args []string, out io.Writer) error {
	flags := flag.NewFlagSet("checksum", flag.ContinueOnError)
	dir := flags.String("dir", "", "directory to checksum")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("checksum needs --dir")
	}
	var paths []string
	err := filepath.WalkDir(*dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(*dir, path)
			if err != nil {
				return err
			}
			paths = append(paths, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, rel := range paths {
		sum, err := fileSHA256(filepath.Join(*dir, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s  %s\n", sum, rel)
	}
	return nil
}

func fileSHA256(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
