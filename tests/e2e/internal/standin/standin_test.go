package standin

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestArchiveName(t *testing.T) {
	ts := time.Date(2024, 3, 4, 12, 20, 30, 0, time.UTC)
	if got, want := ArchiveName("counter", "default", "counter", ts), "checkpoint-counter_default-counter-2024-03-04T12:20:30Z.tar"; got != want {
		t.Fatalf("got %s want %s", got, want)
	}
}

func TestCreateArchiveFileNeverOverwrites(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "checkpoints")
	ts := time.Date(2024, 3, 4, 12, 20, 30, 500, time.UTC)
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		f, path, _, err := CreateArchiveFile(dir, "p", "ns", "c", ts)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if seen[path] {
			t.Fatalf("%s twice", path)
		}
		seen[path] = true
		st, _ := os.Stat(path)
		if st.Mode().Perm() != 0o600 {
			t.Errorf("mode %v", st.Mode().Perm())
		}
	}
	if !seen[filepath.Join(dir, "checkpoint-p_ns-c-2024-03-04T12:20:32Z.tar")] {
		t.Errorf("bumped names: %v", seen)
	}
}

func TestWriteArchive(t *testing.T) {
	for _, size := range []int64{0, 10, 48 + 4096 + 512 + 1, 1 << 20} {
		var buf bytes.Buffer
		a := &ArchiveSpec{Namespace: "ns", Pod: "p", PodUID: "uid", Container: "c", ContainerID: "abc", Image: "img:1",
			CreatedTime: time.Now(), CheckpointedTime: time.Now(), PayloadBytes: size}
		if err := WriteArchive(&buf, a); err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(&buf)
		names := map[string]int64{}
		var img int64
		var cfg ContainerConfig
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			names[h.Name] = h.Size
			data, _ := io.ReadAll(tr)
			if h.Name == "config.dump" {
				if err := json.Unmarshal(data, &cfg); err != nil {
					t.Fatal(err)
				}
			}
			if filepath.Ext(h.Name) == ".img" {
				img += h.Size
			}
		}
		for _, n := range []string{"config.dump", "spec.dump", "checkpoint/", "checkpoint/inventory.img", "checkpoint/pages-1.img", "rootfs-diff.tar"} {
			if _, ok := names[n]; !ok {
				t.Errorf("size %d: no %s", size, n)
			}
		}
		if img != size {
			t.Errorf("payload %d want %d", img, size)
		}
		if cfg.ID != "abc" || cfg.Name != "c" || cfg.RootfsImageName != "img:1" {
			t.Errorf("config %+v", cfg)
		}
	}
}

func TestFaults(t *testing.T) {
	f := MergeFaults(map[string]string{FaultFail: "500", FaultDelay: "3"}, map[string]string{FaultDelay: "1", FaultTruncate: "true", "other": "x"})
	if f.Fail != "500" || f.DelaySeconds != 1 || !f.Truncate || f.Hang || f.SizeBytes != -1 {
		t.Errorf("%+v", f)
	}
	if err := ValidateFaults(map[string]string{FaultSize: "-1"}); err == nil {
		t.Error("negative size accepted")
	}
	if err := ValidateFaults(map[string]string{FaultPrefix + "nope": "1"}); err == nil {
		t.Error("unknown key accepted")
	}
	var n nodeFaultState
	n.set(NodeFaults{Faults: map[string]string{FaultHang: "true"}, Count: 2})
	for i, want := range []bool{true, true, false} {
		if got := truthy(n.take()[FaultHang]); got != want {
			t.Errorf("take %d: %v", i, got)
		}
	}
}
