package driver

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Volume is a directory under <data dir>/volumes.
type Volume struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	CapacityBytes int64  `json:"capacityBytes"`
	// Where its content came from ("" for an empty volume), to answer repeated requests.
	SourceSnapshot string `json:"sourceSnapshot,omitempty"`
	SourceVolume   string `json:"sourceVolume,omitempty"`
	// Target paths where the volume is published (bind-mounted) now.
	Targets []string `json:"targets,omitempty"`
}

// Snapshot is a tar.gz archive under <data dir>/snapshots.
type Snapshot struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	SourceVolume string    `json:"sourceVolume"`
	SizeBytes    int64     `json:"sizeBytes"`
	CreatedAt    time.Time `json:"createdAt"`
}

// store keeps the driver's volumes and snapshots in a JSON file next to their data, so a
// restarted driver knows what it made.
type store struct {
	mu        sync.Mutex
	dir       string
	Volumes   map[string]*Volume   `json:"volumes"`
	Snapshots map[string]*Snapshot `json:"snapshots"`
}

func openStore(dir string) (*store, error) {
	s := &store{dir: dir, Volumes: map[string]*Volume{}, Snapshots: map[string]*Snapshot{}}
	for _, sub := range []string{"volumes", "snapshots"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return nil, err
		}
	}
	data, err := os.ReadFile(s.file())
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *store) file() string { return filepath.Join(s.dir, "state.json") }

func (s *store) volumePath(id string) string { return filepath.Join(s.dir, "volumes", id) }

func (s *store) snapshotPath(id string) string {
	return filepath.Join(s.dir, "snapshots", id+".tar.gz")
}

// save writes the state atomically; the caller holds s.mu.
func (s *store) save() error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.file() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.file())
}

func (s *store) volumeByName(name string) *Volume {
	for _, v := range s.Volumes {
		if v.Name == name {
			return v
		}
	}
	return nil
}

func (s *store) snapshotByName(name string) *Snapshot {
	for _, sn := range s.Snapshots {
		if sn.Name == name {
			return sn
		}
	}
	return nil
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
