// etcdctl, the etcd v3 API client, for saving snapshots and inspecting the local etcds.
package main

import "go.etcd.io/etcd/etcdctl/v3/ctlv3"

func main() {
	ctlv3.MustStart()
}
