// Command pcp-e2e is the local test cluster harness: up, down, status, kubectl,
// and the internal supervise and standin subcommands. Run it through the
// tests/e2e/cluster wrapper, which builds it and the cluster binaries first.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"

	"podcheckpoint.dev/e2e/internal/cluster"
	"podcheckpoint.dev/e2e/internal/standin"
)

func usage() {
	fmt.Fprint(os.Stderr, `usage: cluster <command> [args]

commands:
  up        start the cluster (or check the running one); prints KUBECONFIG=... last
  down      stop everything the cluster started; no-op when not up
  status    what runs where (--json: cluster.json)
  kubectl   run the built kubectl with the admin kubeconfig
  restart   NAME: kill one component and start it again with the same flags
            (kube-apiserver, etcd, kube-controller-manager, kube-scheduler,
            kubelet-real-1, containerd-real-1); waits until it is ready
  import-image NODE TAR: import a docker-save archive into a real node's containerd

environment:
  PCP_CLUSTER_DIR   work dir (default $PCP_CACHE/cluster)
  PCP_CACHE         cache dir (default ~/.cache/podcheckpoint)
  PCP_APISERVER_PORT, PCP_ETCD_PORT, PCP_KUBELET_PORT   port defaults 26443, 23790, 10250
  PCP_UP_TIMEOUT    seconds for up (default 240)
  PCP_STANDIN_PAYLOAD_BYTES   default CRIU payload size of the stand-ins (1048576)
  PCP_E2E_NO_REAL_NODE=1      no real node (kubelet + containerd); said loudly
  PCP_REAL_NODE_ROOT          the real node's kubelet root (default /var/lib/kubelet)
  PCP_REAL_NODE_SERVING_CERT  self-signed (default: kubelet.crt as on kubeadm/kind)
                              or bootstrap (serverTLSBootstrap, CSR approved by up)
`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	work := cluster.WorkDir()
	if abs, err := filepath.Abs(work); err == nil {
		work = abs
	}
	cmd, args := os.Args[1], os.Args[2:]
	switch cmd {
	case "up":
		os.Exit(up(work))
	case "down":
		if err := cluster.Down(work, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "status":
		if len(args) > 0 && args[0] == "--json" {
			b, err := cluster.StatusJSON(work)
			if err != nil {
				fmt.Fprintln(os.Stderr, "cluster: not up:", err)
				os.Exit(1)
			}
			os.Stdout.Write(b)
			return
		}
		if !cluster.Status(work, os.Stdout) {
			os.Exit(1)
		}
	case "kubectl":
		st, err := cluster.LoadState(work)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cluster: not up:", err)
			os.Exit(1)
		}
		kubectl := filepath.Join(st.BinDir, "kubectl")
		argv := append([]string{"kubectl", "--kubeconfig=" + st.AdminKubeconfig}, args...)
		if err := syscall.Exec(kubectl, argv, os.Environ()); err != nil {
			fmt.Fprintln(os.Stderr, "exec kubectl:", err)
			os.Exit(1)
		}
	case "restart":
		if len(args) != 1 {
			fmt.Fprintln(os.Stderr, "usage: cluster restart NAME")
			os.Exit(2)
		}
		if err := cluster.Restart(work, args[0], os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "import-image":
		if len(args) != 2 {
			fmt.Fprintln(os.Stderr, "usage: cluster import-image NODE TAR")
			os.Exit(2)
		}
		st, err := cluster.LoadState(work)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cluster: not up:", err)
			os.Exit(1)
		}
		found := false
		for _, n := range st.RealNodes {
			if n.Name == args[0] {
				found = true
				if err := cluster.ImportImage(st, n, args[1]); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
			}
		}
		if !found {
			fmt.Fprintf(os.Stderr, "cluster: no real node %q\n", args[0])
			os.Exit(1)
		}
	case "supervise":
		fs := flag.NewFlagSet("supervise", flag.ExitOnError)
		w := fs.String("work", work, "work dir")
		_ = fs.Parse(args)
		os.Exit(cluster.Supervise(*w))
	case "standin":
		os.Exit(runStandin(args, work))
	case "-h", "--help", "help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "cluster: unknown command %q\n", cmd)
		usage()
		os.Exit(2)
	}
}

func up(work string) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bin := os.Getenv("PCP_E2E_BIN_DIR")
	if bin == "" {
		fmt.Fprintln(os.Stderr, "cluster: PCP_E2E_BIN_DIR is not set (run tests/e2e/cluster, not the binary)")
		return 1
	}
	timeout := 240 * time.Second
	if v, err := strconv.Atoi(os.Getenv("PCP_UP_TIMEOUT")); err == nil && v > 0 {
		timeout = time.Duration(v) * time.Second
	}
	start := time.Now()
	err = cluster.Up(cluster.Options{
		Work: work, BinDir: bin, HarnessBin: self, CRDFile: os.Getenv("PCP_E2E_CRD"),
		NodeBinDir: os.Getenv("PCP_E2E_NODE_BIN_DIR"), ImagesDir: os.Getenv("PCP_E2E_IMAGES_DIR"),
		Timeout: timeout, Out: os.Stdout, Err: os.Stderr,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "cluster: up in %.1fs\n", time.Since(start).Seconds())
	// KUBECONFIG= was printed last on stdout by Up
	return 0
}

func runStandin(args []string, work string) int {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	fs := flag.NewFlagSet("standin", flag.ExitOnError)
	w := fs.String("work", work, "work dir")
	node := fs.String("node", "", "node name")
	payload := fs.Int64("payload-bytes", 0, "default CRIU payload size (0: $PCP_STANDIN_PAYLOAD_BYTES or 1 MiB)")
	_ = fs.Parse(args)
	st, err := cluster.LoadState(*w)
	if err != nil {
		log.Printf("event=fatal err=%q", err)
		return 1
	}
	var n *cluster.Node
	for i := range st.Nodes {
		if st.Nodes[i].Name == *node {
			n = &st.Nodes[i]
		}
	}
	if n == nil {
		log.Printf("event=fatal err=%q", "unknown node "+*node)
		return 1
	}
	if *payload == 0 {
		if v, err := strconv.ParseInt(os.Getenv("PCP_STANDIN_PAYLOAD_BYTES"), 10, 64); err == nil && v >= 0 {
			*payload = v
		}
	}
	cfg, err := cluster.RESTConfig(st)
	if err != nil {
		log.Printf("event=fatal err=%q", err)
		return 1
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Printf("event=fatal err=%q", err)
		return 1
	}
	tok, err := os.ReadFile(st.StandinAdminTokenFile)
	if err != nil {
		log.Printf("event=fatal err=%q", err)
		return 1
	}
	srv, err := standin.New(standin.Config{
		NodeName:       n.Name,
		Addr:           fmt.Sprintf("%s:%d", n.IP, n.KubeletPort),
		CheckpointsDir: n.CheckpointsDir,
		CertFile:       n.CertFile,
		KeyFile:        n.KeyFile,
		ClientCAFile:   st.CAFile,
		AdminToken:     strings.TrimSpace(string(tok)),
		RequestLog:     n.RequestLog,
		PayloadBytes:   *payload,
		Client:         cs,
	})
	if err != nil {
		log.Printf("event=fatal err=%q", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := srv.Run(ctx); err != nil {
		log.Printf("event=fatal err=%q", err)
		return 1
	}
	log.Printf("event=stopped node=%s", n.Name)
	return 0
}
