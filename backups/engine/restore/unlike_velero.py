"""Where the console's restore defaults differ from Velero's, said on each object they touch.

Velero users expect Velero's defaults; the console keeps two safer ones and says so in
the item's message (the preview lists it before anything changes, the restore after):

* **Node ports.** Velero keeps a Service's node ports that were set explicitly (and
  drops the ones the cluster assigned). The console drops them all unless the restore
  preserves node ports: a node port is unique in a cluster, so a copy restored beside
  its original, or into a cluster that already uses the port, would fail with "port
  already allocated". Each Service that loses node ports lists them.
* **Persistent volumes.** Velero restores PersistentVolumes unless told not to
  (``velero restore create --restore-volumes=false``). The console restores them only
  with "Restore persistent volumes" (``--restore-pvs``): a PV object points at a disk,
  and recreating it in another cluster can attach that cluster to the source's disk
  (shared or network storage) while the source still writes to it; the console's option
  also brings the data back (snapshots, copies), which should be asked for. Each claim
  whose volume is left out says so, and what that means for it.
"""

from __future__ import annotations


def node_ports(obj: dict) -> list[str]:
    """The node ports a Service sets (``30080/http``) and its health-check node port."""
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    found = []
    for port in spec.get("ports") or ():
        if isinstance(port, dict) and port.get("nodePort"):
            name = port.get("name") or port.get("port") or ""
            found.append(f"{port['nodePort']}/{name}" if name != "" else str(port["nodePort"]))
    if spec.get("healthCheckNodePort"):
        found.append(f"{spec['healthCheckNodePort']} (health check)")
    return found


def node_port_note(dropped: list[str]) -> str:
    if not dropped:
        return ""
    return (
        f"Node ports {', '.join(dropped)} are not kept: the target assigns new ones, so the "
        "Service cannot collide with one already using them. Velero keeps node ports that "
        "were set explicitly; choose Preserve node ports to keep them."
    )


def claim_note(obj: dict) -> str:
    """For a claim restored without its volume (persistent volumes not restored)."""
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    volume = spec.get("volumeName")
    if not volume:
        return ""
    return (
        f"Its PersistentVolume {volume} is not restored (Restore persistent volumes is off; "
        "Velero restores volumes unless told not to): the claim binds only to that volume "
        "if the target already has it, and its data is not brought back."
    )
