// csi-hostpath serves a small CSI driver on a unix socket: volumes are directories under
// --data-dir, snapshots are tar.gz archives of them. With --registration-dir it also serves
// the kubelet's plugin-registration socket, so a kubelet on this host finds the driver.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	"palette.local/devenv/csi-hostpath/driver"
)

var version = "v0.1.0"

func main() {
	name := flag.String("driver-name", "hostpath.csi.palette.local", "CSI driver name")
	endpoint := flag.String("endpoint", "", "unix socket path of the CSI services")
	dataDir := flag.String("data-dir", "", "directory of the volumes, snapshots and state")
	nodeID := flag.String("node-id", "", "the node's name as the kubelet knows it")
	regDir := flag.String("registration-dir", "", "the kubelet's plugins_registry directory (optional)")
	health := flag.String("health-address", "", "host:port of a /healthz endpoint (optional)")
	flag.Parse()
	if *endpoint == "" || *dataDir == "" || *nodeID == "" {
		fmt.Fprintln(os.Stderr, "--endpoint, --data-dir and --node-id are required")
		os.Exit(2)
	}
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	d, err := driver.New(*name, version, *nodeID, *dataDir)
	if err != nil {
		log.Fatal(err)
	}
	csiServer := grpc.NewServer(grpc.UnaryInterceptor(logErrors))
	csi.RegisterIdentityServer(csiServer, d)
	csi.RegisterControllerServer(csiServer, d)
	csi.RegisterNodeServer(csiServer, d)
	csiListener, err := listenUnix(*endpoint)
	if err != nil {
		log.Fatal(err)
	}
	go serve(csiServer, csiListener)
	servers := []*grpc.Server{csiServer}
	sockets := []string{*endpoint}

	if *regDir != "" {
		sock := filepath.Join(*regDir, *name+"-reg.sock")
		reg := &driver.Registration{DriverName: *name, Endpoint: *endpoint}
		regServer := grpc.NewServer()
		registerapi.RegisterRegistrationServer(regServer, reg)
		l, err := listenUnix(sock)
		if err != nil {
			log.Fatal(err)
		}
		go serve(regServer, l)
		servers = append(servers, regServer)
		sockets = append(sockets, sock)
	}
	if *health != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		srv := &http.Server{Addr: *health, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Fatal(err)
			}
		}()
	}
	log.Printf("%s %s serving on %s (node %s, data in %s)", *name, version, *endpoint, *nodeID, *dataDir)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	for _, s := range servers {
		s.GracefulStop()
	}
	for _, s := range sockets {
		_ = os.Remove(s)
	}
	log.Print("stopped")
}

// listenUnix listens on a fresh unix socket at path (a stale one from a killed run is removed).
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return net.Listen("unix", path)
}

func serve(s *grpc.Server, l net.Listener) {
	if err := s.Serve(l); err != nil {
		log.Fatal(err)
	}
}

func logErrors(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	if err != nil {
		log.Printf("%s: %v", info.FullMethod, err)
	}
	return resp, err
}
