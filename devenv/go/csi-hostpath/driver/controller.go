package driver

import (
	"context"
	"fmt"
	"log"
	"os"
	"sort"
	"strconv"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const defaultCapacity = 1 << 30 // 1 GiB when a request names no size (not enforced)

// Driver serves the CSI Identity, Controller and Node services.
type Driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer
	csi.UnimplementedNodeServer

	Name    string
	Version string
	NodeID  string
	store   *store
}

// New opens (or creates) the driver's state under dataDir.
func New(name, version, nodeID, dataDir string) (*Driver, error) {
	s, err := openStore(dataDir)
	if err != nil {
		return nil, fmt.Errorf("state in %s: %w", dataDir, err)
	}
	return &Driver{Name: name, Version: version, NodeID: nodeID, store: s}, nil
}

// --- Identity ---

func (d *Driver) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: d.Name, VendorVersion: d.Version}, nil
}

func (d *Driver) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{Capabilities: []*csi.PluginCapability{{
		Type: &csi.PluginCapability_Service_{Service: &csi.PluginCapability_Service{
			Type: csi.PluginCapability_Service_CONTROLLER_SERVICE,
		}},
	}}}, nil
}

func (d *Driver) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{}, nil
}

// --- Controller ---

var controllerCaps = []csi.ControllerServiceCapability_RPC_Type{
	csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
	csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
	csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
	csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
}

func (d *Driver) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	resp := &csi.ControllerGetCapabilitiesResponse{}
	for _, c := range controllerCaps {
		resp.Capabilities = append(resp.Capabilities, &csi.ControllerServiceCapability{
			Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{Type: c}},
		})
	}
	return resp, nil
}

// checkCapabilities accepts mounted (filesystem) volumes on one node; a directory cannot be
// a raw block device.
func checkCapabilities(caps []*csi.VolumeCapability) error {
	if len(caps) == 0 {
		return status.Error(codes.InvalidArgument, "volume capabilities are required")
	}
	for _, c := range caps {
		if c.GetBlock() != nil {
			return status.Error(codes.InvalidArgument, "block volumes are not supported")
		}
		if c.GetMount() == nil {
			return status.Error(codes.InvalidArgument, "an access type (mount) is required")
		}
		if c.GetAccessMode() == nil {
			return status.Error(codes.InvalidArgument, "an access mode is required")
		}
	}
	return nil
}

func (d *Driver) CreateVolume(_ context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "a volume name is required")
	}
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	capacity := req.GetCapacityRange().GetRequiredBytes()
	if limit := req.GetCapacityRange().GetLimitBytes(); limit > 0 && capacity > limit {
		return nil, status.Error(codes.InvalidArgument, "required bytes exceed the limit")
	}
	if capacity == 0 {
		capacity = defaultCapacity
		if limit := req.GetCapacityRange().GetLimitBytes(); limit > 0 && limit < capacity {
			capacity = limit
		}
	}
	fromSnap := req.GetVolumeContentSource().GetSnapshot().GetSnapshotId()
	fromVol := req.GetVolumeContentSource().GetVolume().GetVolumeId()

	s := d.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.volumeByName(req.GetName()); v != nil {
		if v.CapacityBytes != capacity || v.SourceSnapshot != fromSnap || v.SourceVolume != fromVol {
			return nil, status.Errorf(codes.AlreadyExists, "volume %q exists with other parameters", v.Name)
		}
		return &csi.CreateVolumeResponse{Volume: d.csiVolume(v, req)}, nil
	}
	v := &Volume{ID: newID(), Name: req.GetName(), CapacityBytes: capacity,
		SourceSnapshot: fromSnap, SourceVolume: fromVol}
	dir := s.volumePath(v.ID)
	if err := os.Mkdir(dir, 0o777); err != nil {
		return nil, status.Errorf(codes.Internal, "create volume directory: %v", err)
	}
	// Mkdir honours the umask: a fresh volume is writable by any pod user, as hostpath's is.
	if err := os.Chmod(dir, 0o777); err != nil {
		return nil, status.Errorf(codes.Internal, "volume directory mode: %v", err)
	}
	if err := d.fill(v, dir); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	s.Volumes[v.ID] = v
	if err := s.save(); err != nil {
		delete(s.Volumes, v.ID)
		_ = os.RemoveAll(dir)
		return nil, status.Errorf(codes.Internal, "save state: %v", err)
	}
	log.Printf("created volume %s (%s) from snapshot=%q volume=%q", v.ID, v.Name, fromSnap, fromVol)
	return &csi.CreateVolumeResponse{Volume: d.csiVolume(v, req)}, nil
}

// fill copies a new volume's content source into its directory; the caller holds s.mu.
func (d *Driver) fill(v *Volume, dir string) error {
	s := d.store
	switch {
	case v.SourceSnapshot != "":
		sn, ok := s.Snapshots[v.SourceSnapshot]
		if !ok {
			return status.Errorf(codes.NotFound, "snapshot %s not found", v.SourceSnapshot)
		}
		f, err := os.Open(s.snapshotPath(sn.ID))
		if err != nil {
			return status.Errorf(codes.Internal, "open snapshot: %v", err)
		}
		defer f.Close()
		if err := ExtractArchive(f, dir); err != nil {
			return status.Errorf(codes.Internal, "restore snapshot %s: %v", sn.ID, err)
		}
	case v.SourceVolume != "":
		if _, ok := s.Volumes[v.SourceVolume]; !ok {
			return status.Errorf(codes.NotFound, "volume %s not found", v.SourceVolume)
		}
		if err := CopyTree(s.volumePath(v.SourceVolume), dir); err != nil {
			return status.Errorf(codes.Internal, "clone volume %s: %v", v.SourceVolume, err)
		}
	}
	return nil
}

func (d *Driver) csiVolume(v *Volume, req *csi.CreateVolumeRequest) *csi.Volume {
	return &csi.Volume{
		VolumeId:      v.ID,
		CapacityBytes: v.CapacityBytes,
		VolumeContext: req.GetParameters(),
		ContentSource: req.GetVolumeContentSource(),
	}
}

func (d *Driver) DeleteVolume(_ context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "a volume id is required")
	}
	s := d.store
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.Volumes[id]
	if !ok {
		return &csi.DeleteVolumeResponse{}, nil // already gone: deletion is idempotent
	}
	// A pod that still has it mounted would see its files vanish: the caller retries later.
	if busy := mountedTargets(v); len(busy) > 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s is still published on %v", id, busy)
	}
	if err := os.RemoveAll(s.volumePath(id)); err != nil {
		return nil, status.Errorf(codes.Internal, "remove volume: %v", err)
	}
	delete(s.Volumes, id)
	if err := s.save(); err != nil {
		return nil, status.Errorf(codes.Internal, "save state: %v", err)
	}
	log.Printf("deleted volume %s", id)
	return &csi.DeleteVolumeResponse{}, nil
}

func (d *Driver) ValidateVolumeCapabilities(_ context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "a volume id is required")
	}
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	d.store.mu.Lock()
	_, ok := d.store.Volumes[req.GetVolumeId()]
	d.store.mu.Unlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "volume %s not found", req.GetVolumeId())
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
	}}, nil
}

func (d *Driver) CreateSnapshot(_ context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "a snapshot name is required")
	}
	src := req.GetSourceVolumeId()
	if src == "" {
		return nil, status.Error(codes.InvalidArgument, "a source volume id is required")
	}
	s := d.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if sn := s.snapshotByName(req.GetName()); sn != nil {
		if sn.SourceVolume != src {
			return nil, status.Errorf(codes.AlreadyExists, "snapshot %q exists for another volume", sn.Name)
		}
		return &csi.CreateSnapshotResponse{Snapshot: csiSnapshot(sn)}, nil
	}
	if _, ok := s.Volumes[src]; !ok {
		return nil, status.Errorf(codes.NotFound, "volume %s not found", src)
	}
	sn := &Snapshot{ID: newID(), Name: req.GetName(), SourceVolume: src}
	size, err := writeSnapshot(s.volumePath(src), s.snapshotPath(sn.ID))
	if err != nil {
		return nil, status.Errorf(codes.Internal, "archive volume %s: %v", src, err)
	}
	sn.SizeBytes = size
	sn.CreatedAt = timestamppb.Now().AsTime()
	s.Snapshots[sn.ID] = sn
	if err := s.save(); err != nil {
		delete(s.Snapshots, sn.ID)
		_ = os.Remove(s.snapshotPath(sn.ID))
		return nil, status.Errorf(codes.Internal, "save state: %v", err)
	}
	log.Printf("created snapshot %s (%s) of volume %s, %d bytes", sn.ID, sn.Name, src, size)
	return &csi.CreateSnapshotResponse{Snapshot: csiSnapshot(sn)}, nil
}

// writeSnapshot archives dir into path (through a temporary file, so a half-written archive
// never has the final name).
func writeSnapshot(dir, path string) (int64, error) {
	tmp := path + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	size, err := WriteArchive(dir, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return size, err
}

func csiSnapshot(sn *Snapshot) *csi.Snapshot {
	return &csi.Snapshot{
		SnapshotId:     sn.ID,
		SourceVolumeId: sn.SourceVolume,
		SizeBytes:      sn.SizeBytes,
		CreationTime:   timestamppb.New(sn.CreatedAt),
		ReadyToUse:     true,
	}
}

func (d *Driver) DeleteSnapshot(_ context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	id := req.GetSnapshotId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "a snapshot id is required")
	}
	s := d.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.Snapshots[id]; !ok {
		return &csi.DeleteSnapshotResponse{}, nil
	}
	if err := os.Remove(s.snapshotPath(id)); err != nil && !os.IsNotExist(err) {
		return nil, status.Errorf(codes.Internal, "remove snapshot: %v", err)
	}
	delete(s.Snapshots, id)
	if err := s.save(); err != nil {
		return nil, status.Errorf(codes.Internal, "save state: %v", err)
	}
	log.Printf("deleted snapshot %s", id)
	return &csi.DeleteSnapshotResponse{}, nil
}

func (d *Driver) ListSnapshots(_ context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	s := d.store
	s.mu.Lock()
	var found []*Snapshot
	for _, sn := range s.Snapshots {
		if req.GetSnapshotId() != "" && sn.ID != req.GetSnapshotId() {
			continue
		}
		if req.GetSourceVolumeId() != "" && sn.SourceVolume != req.GetSourceVolumeId() {
			continue
		}
		found = append(found, sn)
	}
	s.mu.Unlock()
	sort.Slice(found, func(i, j int) bool {
		if !found[i].CreatedAt.Equal(found[j].CreatedAt) {
			return found[i].CreatedAt.Before(found[j].CreatedAt)
		}
		return found[i].ID < found[j].ID
	})
	start := 0
	if tok := req.GetStartingToken(); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || n > len(found) {
			return nil, status.Errorf(codes.Aborted, "invalid starting token %q", tok)
		}
		start = n
	}
	end := len(found)
	if m := int(req.GetMaxEntries()); m < 0 {
		return nil, status.Error(codes.InvalidArgument, "max entries must not be negative")
	} else if m > 0 && start+m < end {
		end = start + m
	}
	resp := &csi.ListSnapshotsResponse{}
	for _, sn := range found[start:end] {
		resp.Entries = append(resp.Entries, &csi.ListSnapshotsResponse_Entry{Snapshot: csiSnapshot(sn)})
	}
	if end < len(found) {
		resp.NextToken = strconv.Itoa(end)
	}
	return resp, nil
}
