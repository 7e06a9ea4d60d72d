package standin

import (
	"archive/tar"
	"bytes"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// DefaultPayloadBytes is the default total size of the opaque CRIU image files.
const DefaultPayloadBytes = 1 << 20

// ArchiveSpec is what goes into one checkpoint archive.
type ArchiveSpec struct {
	Namespace, Pod, PodUID, Container string
	ContainerID                       string
	Image, ImageRef                   string
	Command                           []string
	CreatedTime                       time.Time
	CheckpointedTime                  time.Time
	PayloadBytes                      int64 // total size of checkpoint/*.img
}

// ArchiveName is the kubelet's file name: checkpoint-<pod>_<ns>-<ctr>-<RFC3339>.tar
// (kubelet.go: "checkpoint-%s-%s-%s.tar", podFullName, containerName, time.Now().Format(time.RFC3339)).
func ArchiveName(pod, ns, container string, t time.Time) string {
	return fmt.Sprintf("checkpoint-%s_%s-%s-%s.tar", pod, ns, container, t.Format(time.RFC3339))
}

// CreateArchiveFile creates the archive file exclusively (O_EXCL, mode 0600). The
// real kubelet names the file after the current second, so two checkpoints of one
// container within a second would collide; the stand-in never overwrites: when the
// name exists it bumps the time in the name by one second and tries again.
func CreateArchiveFile(dir, pod, ns, container string, t time.Time) (*os.File, string, time.Time, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", t, err
	}
	t = t.Truncate(time.Second)
	for i := 0; i < 120; i++ {
		path := filepath.Join(dir, ArchiveName(pod, ns, container, t))
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			return f, path, t, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, path, t, err
		}
		t = t.Add(time.Second)
	}
	return nil, "", t, fmt.Errorf("no free archive name for %s/%s/%s", ns, pod, container)
}

// ContainerConfig is config.dump as containerd 2.x / checkpointctl write it.
type ContainerConfig struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	RootfsImage     string    `json:"rootfsImage,omitempty"`
	RootfsImageRef  string    `json:"rootfsImageRef,omitempty"`
	RootfsImageName string    `json:"rootfsImageName,omitempty"`
	OCIRuntime      string    `json:"runtime,omitempty"`
	CreatedTime     time.Time `json:"createdTime"`
	CheckpointedAt  time.Time `json:"checkpointedTime"`
	RestoredAt      time.Time `json:"restoredTime"`
	Restored        bool      `json:"restored"`
}

func specDump(a *ArchiveSpec) map[string]any {
	args := a.Command
	if len(args) == 0 {
		args = []string{"/bin/sh", "-c", "sleep infinity"}
	}
	sandboxID := sha256.Sum256([]byte(a.PodUID + "/sandbox"))
	return map[string]any{
		"ociVersion": "1.2.0",
		"process": map[string]any{
			"user": map[string]any{"uid": 0, "gid": 0},
			"args": args,
			"env":  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=" + a.Pod},
			"cwd":  "/",
		},
		"root":     map[string]any{"path": "rootfs"},
		"hostname": a.Pod,
		"mounts": []map[string]any{
			{"destination": "/proc", "type": "proc", "source": "proc", "options": []string{"nosuid", "noexec", "nodev"}},
		},
		"annotations": map[string]string{
			"io.kubernetes.cri.container-type":    "container",
			"io.kubernetes.cri.container-name":    a.Container,
			"io.kubernetes.cri.image-name":        a.Image,
			"io.kubernetes.cri.sandbox-id":        hex.EncodeToString(sandboxID[:]),
			"io.kubernetes.cri.sandbox-name":      a.Pod,
			"io.kubernetes.cri.sandbox-namespace": a.Namespace,
			"io.kubernetes.cri.sandbox-uid":       a.PodUID,
		},
		"linux": map[string]any{
			"namespaces": []map[string]string{{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}},
		},
	}
}

func rootfsDiff(a *ArchiveSpec) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := []byte(fmt.Sprintf("written by the kubelet stand-in for %s/%s/%s\n", a.Namespace, a.Pod, a.Container))
	for _, h := range []*tar.Header{
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: a.CheckpointedTime},
		{Name: "tmp/stand-in.txt", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: a.CheckpointedTime},
	} {
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(body); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// payloadFiles splits the CRIU payload over the usual image files.
func payloadFiles(total int64) []struct {
	name string
	size int64
} {
	out := []struct {
		name string
		size int64
	}{{"inventory.img", 48}, {"core-1.img", 4096}, {"pagemap-1.img", 512}, {"pages-1.img", 0}}
	rem := total
	for i := range out {
		if i == len(out)-1 || out[i].size > rem {
			out[i].size = rem
		}
		rem -= out[i].size
	}
	return out
}

// WriteArchive writes the whole uncompressed tar to w.
func WriteArchive(w io.Writer, a *ArchiveSpec) error {
	tw := tar.NewWriter(w)
	mt := a.CheckpointedTime
	file := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(data)), ModTime: mt}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	cfg, err := json.Marshal(&ContainerConfig{
		ID:              a.ContainerID,
		Name:            a.Container,
		RootfsImage:     a.Image,
		RootfsImageRef:  a.ImageRef,
		RootfsImageName: a.Image,
		OCIRuntime:      "io.containerd.runc.v2",
		CreatedTime:     a.CreatedTime,
		CheckpointedAt:  a.CheckpointedTime,
	})
	if err != nil {
		return err
	}
	if err := file("config.dump", cfg); err != nil {
		return err
	}
	spec, err := json.Marshal(specDump(a))
	if err != nil {
		return err
	}
	if err := file("spec.dump", spec); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "checkpoint/", Typeflag: tar.TypeDir, Mode: 0o700, ModTime: mt}); err != nil {
		return err
	}
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return err
	}
	rng := rand.NewChaCha8(seed)
	buf := make([]byte, 64<<10)
	for _, p := range payloadFiles(a.PayloadBytes) {
		if err := tw.WriteHeader(&tar.Header{Name: "checkpoint/" + p.name, Typeflag: tar.TypeReg, Mode: 0o600, Size: p.size, ModTime: mt}); err != nil {
			return err
		}
		for left := p.size; left > 0; {
			n := int64(len(buf))
			if left < n {
				n = left
			}
			_, _ = rng.Read(buf[:n])
			if _, err := tw.Write(buf[:n]); err != nil {
				return err
			}
			left -= n
		}
	}
	diff, err := rootfsDiff(a)
	if err != nil {
		return err
	}
	if err := file("rootfs-diff.tar", diff); err != nil {
		return err
	}
	return tw.Close()
}
