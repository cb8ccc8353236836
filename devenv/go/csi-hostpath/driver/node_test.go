package driver

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
)

func TestPublishBindMountsAndGuardsDelete(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root")
	}
	ctx := context.Background()
	d := testDriver(t, t.TempDir())
	id := createVolume(t, d, "v")
	target := filepath.Join(t.TempDir(), "pod", "mount")
	pub := &csi.NodePublishVolumeRequest{VolumeId: id, TargetPath: target, VolumeCapability: mountCap[0]}
	for i := 0; i < 2; i++ { // publishing twice is a no-op
		if _, err := d.NodePublishVolume(ctx, pub); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(target, "f"), []byte("through the mount"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(d.store.volumePath(id), "f"))
	if err != nil || string(got) != "through the mount" {
		t.Fatalf("volume directory holds %q, %v", got, err)
	}
	if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); code(err) != codes.FailedPrecondition {
		t.Fatalf("deleting a published volume: %v", err)
	}
	unpub := &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target}
	for i := 0; i < 2; i++ {
		if _, err := d.NodeUnpublishVolume(ctx, unpub); err != nil {
			t.Fatal(err)
		}
	}
	if mounted, _ := isMountPoint(target); mounted {
		t.Fatal("target still mounted")
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("target left: %v", err)
	}
	if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
		t.Fatal(err)
	}
	missing := &csi.NodePublishVolumeRequest{VolumeId: "missing", TargetPath: target, VolumeCapability: mountCap[0]}
	if _, err := d.NodePublishVolume(ctx, missing); code(err) != codes.NotFound {
		t.Fatalf("publishing an unknown volume: %v", err)
	}
}

func TestPublishReadOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root")
	}
	ctx := context.Background()
	d := testDriver(t, t.TempDir())
	id := createVolume(t, d, "v")
	target := filepath.Join(t.TempDir(), "ro")
	pub := &csi.NodePublishVolumeRequest{VolumeId: id, TargetPath: target, VolumeCapability: mountCap[0], Readonly: true}
	if _, err := d.NodePublishVolume(ctx, pub); err != nil {
		t.Fatal(err)
	}
	defer d.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target})
	if err := os.WriteFile(filepath.Join(target, "f"), []byte("x"), 0o644); err == nil {
		t.Fatal("wrote through a read-only publish")
	}
}

func TestUnescapeMountPath(t *testing.T) {
	if got := unescapeMountPath(`/a\040b\134c\0`); got != `/a b\c\0` {
		t.Errorf("got %q", got)
	}
}
