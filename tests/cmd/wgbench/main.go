// Command wgbench runs wireguard-go (golang.zx2c4.com/wireguard, userspace:
// its TUN offloads and UDP GSO/GRO) as the anchor of sitesec's data-plane
// benchmark (tests/bench): one device with one peer, keys derived from two
// words so that the two ends need no key exchange. It creates the TUN
// device and runs until SIGINT or SIGTERM; addresses and routes are the
// caller's (ip).
//
//	wgbench -name wg0 -key r2 -peer r3 -endpoint 192.168.255.3:51820 -allowed 10.0.0.0/24
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/crypto/curve25519"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
)

// private derives a Curve25519 private key from word (benchmark only: the
// key is public knowledge).
func private(word string) []byte {
	k := sha256.Sum256([]byte("wgbench " + word))
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k[:]
}

func main() {
	name := flag.String("name", "wg0", "TUN device name")
	mtu := flag.Int("mtu", 1420, "TUN MTU (wg-quick's default)")
	port := flag.Int("listen", 51820, "UDP listen port")
	key := flag.String("key", "", "word this end's private key is derived from")
	peer := flag.String("peer", "", "word the peer's private key is derived from")
	endpoint := flag.String("endpoint", "", "peer address:port")
	allowed := flag.String("allowed", "", "peer's allowed IPs (prefix)")
	verbose := flag.Bool("v", false, "wireguard-go verbose log")
	flag.Parse()
	if *key == "" || *peer == "" || *endpoint == "" || *allowed == "" {
		flag.Usage()
		os.Exit(2)
	}
	pub, err := curve25519.X25519(private(*peer), curve25519.Basepoint)
	if err != nil {
		fail(err)
	}
	dev, err := tun.CreateTUN(*name, *mtu)
	if err != nil {
		fail(fmt.Errorf("create TUN %s: %w", *name, err))
	}
	level := device.LogLevelError
	if *verbose {
		level = device.LogLevelVerbose
	}
	d := device.NewDevice(dev, conn.NewDefaultBind(), device.NewLogger(level, "wgbench: "))
	conf := fmt.Sprintf("private_key=%s\nlisten_port=%d\npublic_key=%s\nendpoint=%s\nallowed_ip=%s\npersistent_keepalive_interval=1\n",
		hex.EncodeToString(private(*key)), *port, hex.EncodeToString(pub), *endpoint, *allowed)
	if err := d.IpcSet(conf); err != nil {
		fail(fmt.Errorf("configure: %w", err))
	}
	if err := d.Up(); err != nil {
		fail(fmt.Errorf("up: %w", err))
	}
	fmt.Println("wgbench: up")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
	case <-d.Wait():
	}
	d.Close()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "wgbench:", err)
	os.Exit(1)
}
