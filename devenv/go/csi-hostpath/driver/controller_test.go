package driver

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var mountCap = []*csi.VolumeCapability{{
	AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
}}

func code(err error) codes.Code { return status.Code(err) }

// testDriver is a driver on a fresh data directory.
func testDriver(t *testing.T, dataDir string) *Driver {
	t.Helper()
	d, err := New("test.csi", "v0", "node", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// createVolume creates an empty mounted volume and returns its id.
func createVolume(t *testing.T, d *Driver, name string) string {
	t.Helper()
	vol, err := d.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: mountCap})
	if err != nil {
		t.Fatal(err)
	}
	return vol.GetVolume().GetVolumeId()
}

func TestVolumeSnapshotRestore(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	d := testDriver(t, dataDir)
	id := createVolume(t, d, "pvc-1")
	again, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-1", VolumeCapabilities: mountCap})
	if err != nil || again.GetVolume().GetVolumeId() != id {
		t.Fatalf("repeated CreateVolume: %v %v", again, err)
	}
	_, err = d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-1", VolumeCapabilities: mountCap,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 5}})
	if code(err) != codes.AlreadyExists {
		t.Fatalf("other capacity: %v", err)
	}
	dir := filepath.Join(dataDir, "volumes", id)
	if err := os.WriteFile(filepath.Join(dir, "data"), []byte("bytes of the volume"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap, err := d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-1", SourceVolumeId: id})
	if err != nil {
		t.Fatal(err)
	}
	sid := snap.GetSnapshot().GetSnapshotId()
	if !snap.GetSnapshot().GetReadyToUse() || snap.GetSnapshot().GetSizeBytes() != 19 {
		t.Errorf("snapshot: %v", snap)
	}
	// Writes after the snapshot are not in it.
	if err := os.WriteFile(filepath.Join(dir, "data"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-1", SourceVolumeId: "other"}); code(err) != codes.AlreadyExists {
		t.Fatalf("snapshot name reused for another volume: %v", err)
	}

	// A restarted driver knows its volumes and snapshots.
	d = testDriver(t, dataDir)
	src := &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
		Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: sid}}}
	restored, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-2", VolumeCapabilities: mountCap, VolumeContentSource: src})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dataDir, "volumes", restored.GetVolume().GetVolumeId(), "data"))
	if err != nil || string(got) != "bytes of the volume" {
		t.Fatalf("restored %q, %v", got, err)
	}
	missing := &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
		Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: "nope"}}}
	if _, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-3", VolumeCapabilities: mountCap, VolumeContentSource: missing}); code(err) != codes.NotFound {
		t.Fatalf("unknown snapshot: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "volumes")); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(dataDir, "volumes"))
	if len(entries) != 2 {
		t.Errorf("a failed restore left a directory behind: %d volumes", len(entries))
	}

	clone, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-4", VolumeCapabilities: mountCap,
		VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
			Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: id}}}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(filepath.Join(dataDir, "volumes", clone.GetVolume().GetVolumeId(), "data"))
	if string(got) != "changed" {
		t.Errorf("clone holds %q", got)
	}

	if _, err := d.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: sid}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: sid}); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "snapshots", sid+".tar.gz")); !os.IsNotExist(err) {
		t.Errorf("snapshot archive left: %v", err)
	}
	if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("volume directory left: %v", err)
	}
}

func TestListSnapshotsPages(t *testing.T) {
	ctx := context.Background()
	d := testDriver(t, t.TempDir())
	vol, other := createVolume(t, d, "v"), createVolume(t, d, "w")
	for _, n := range []string{"s1", "s2", "s3"} {
		if _, err := d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: n, SourceVolumeId: vol}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "s4", SourceVolumeId: other}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	token := ""
	for pages := 0; ; pages++ {
		resp, err := d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{MaxEntries: 2, StartingToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.GetEntries() {
			seen[e.GetSnapshot().GetSnapshotId()] = true
		}
		token = resp.GetNextToken()
		if token == "" {
			if pages != 1 {
				t.Errorf("%d pages, want 2", pages+1)
			}
			break
		}
	}
	if len(seen) != 4 {
		t.Errorf("listed %d snapshots, want 4", len(seen))
	}
	bySource, _ := d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SourceVolumeId: other})
	if len(bySource.GetEntries()) != 1 {
		t.Errorf("by source: %v", bySource)
	}
	if _, err := d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{StartingToken: "x"}); code(err) != codes.Aborted {
		t.Errorf("bad token: %v", err)
	}
}
