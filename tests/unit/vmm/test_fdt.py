"""The generated ``virt`` device tree against dtc and against QEMU's own trees.

Outside truths: Debian's ``dtc`` (the blob decompiles without a warning), QEMU 7.2's tree for
``-M virt -cpu cortex-a57`` as dumped in ``shared/harness/reference`` (compiled here with
``dtc``), and trees that ``qemu-system-aarch64 -M virt,dumpdtb=FILE`` writes during the test
for other CPU counts, GIC versions and boot arguments. Trees are compared node by node with
phandles resolved to the paths they point at, so allocation order does not matter.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import libfdt
import pytest

from support.shared import HARNESS

from armvisor.vmm.devices import Pl011, Pl031
from armvisor.vmm.fdt import BoardSpec, build_virt_fdt

REFERENCE_DTS = HARNESS / "reference/qemu-virt-cortex-a57.dts"
RAM_BASE = 0x4000_0000
RAM_SIZE = 128 << 20  # QEMU's default -m

#: QEMU's nodes that armvisor's virt does not have (see armvisor.vmm.fdt's docstring).
OMITTED_NODES = (
    "/flash@0",
    "/fw-cfg@9020000",
    "/virtio_mmio@",
    "/pcie@10000000",
    "/pl061@9030000",
    "/gpio-keys",
    "/platform-bus@c000000",
    "/pmu",
    "/intc@8000000/v2m@8020000",
    "/intc@8000000/its@8080000",
)
#: Random per-boot seeds QEMU adds to /chosen; armvisor's blob is reproducible.
OMITTED_PROPERTIES = {"/chosen": {"rng-seed", "kaslr-seed"}}
#: Properties whose cells are phandles.
PHANDLE_PROPERTIES = {"interrupt-parent", "clocks", "cpu"}

Tree = dict[str, dict[str, object]]

needs_dtc = pytest.mark.skipif(shutil.which("dtc") is None, reason="dtc is not installed")
needs_qemu = pytest.mark.skipif(
    shutil.which("qemu-system-aarch64") is None, reason="qemu-system-aarch64 is not installed"
)


def board(cpus: int = 1, gic_version: int = 2, **boot: object) -> BoardSpec:
    devices = [Pl011(output=io.BytesIO()), Pl031()]
    return BoardSpec(RAM_BASE, RAM_SIZE, cpus, gic_version, devices, **boot)  # type: ignore[arg-type]


def words(value: object, width: int = 4) -> list[int]:
    """A property value as big-endian integers of ``width`` bytes."""
    assert isinstance(value, bytes)
    return [int.from_bytes(value[i : i + width], "big") for i in range(0, len(value), width)]


def parse(blob: bytes) -> Tree:
    """Every node's properties by path; phandle cells replaced by the path they name."""
    fdt = libfdt.Fdt(blob)
    raw: dict[str, dict[str, bytes]] = {}

    def walk(offset: int, path: str) -> None:
        props = {}
        prop = fdt.first_property_offset(offset, libfdt.QUIET_NOTFOUND)
        while prop >= 0:
            value = fdt.get_property_by_offset(prop)
            props[value.name] = bytes(value)
            prop = fdt.next_property_offset(prop, libfdt.QUIET_NOTFOUND)
        raw[path] = props
        child = fdt.first_subnode(offset, libfdt.QUIET_NOTFOUND)
        while child >= 0:
            walk(child, f"{path.rstrip('/')}/{fdt.get_name(child)}")
            child = fdt.next_subnode(child, libfdt.QUIET_NOTFOUND)

    walk(0, "/")
    by_phandle = {words(p["phandle"])[0]: path for path, p in raw.items() if "phandle" in p}
    tree: Tree = {}
    for path, props in raw.items():
        tree[path] = {
            name: tuple(by_phandle[cell] for cell in words(value))
            if name in PHANDLE_PROPERTIES
            else value
            for name, value in props.items()
            if name != "phandle"
        }
    return tree


def modelled(reference: Tree) -> Tree:
    """The part of QEMU's tree that armvisor models."""
    return {
        path: {
            name: value for name, value in props.items() if name not in OMITTED_PROPERTIES.get(path, ())
        }
        for path, props in reference.items()
        if not path.startswith(OMITTED_NODES)
    }


def assert_same_tree(ours: Tree, reference: Tree) -> None:
    expected = modelled(reference)
    assert sorted(ours) == sorted(expected)
    for path, props in expected.items():
        assert ours[path] == props, path


def dtc(*args: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["dtc", *args], input=stdin, capture_output=True, timeout=30, check=True)


def qemu_dtb(tmp_path: Path, *args: str, machine: str = "virt") -> bytes:
    """The tree QEMU builds for ``-M <machine>`` (dumpdtb makes QEMU exit after writing it)."""
    out = tmp_path / "qemu.dtb"
    subprocess.run(
        ["qemu-system-aarch64", "-M", f"{machine},dumpdtb={out}", "-cpu", "cortex-a57",
         "-m", "128M", "-display", "none", "-nodefaults", *args],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    return out.read_bytes()


# -- dtc -----------------------------------------------------------------------------------


@needs_dtc
@pytest.mark.parametrize(
    "spec",
    [
        board(),
        board(cpus=4),
        board(cpus=8, gic_version=2),
        board(cpus=4, gic_version=3),
        board(bootargs="console=ttyAMA0 root=/dev/ram", initrd=(0x4800_0000, 0x4810_0000)),
        board(initrd=(0x1_4000_0000, 0x1_4001_0000)),
    ],
    ids=["1cpu", "4cpu", "8cpu", "gicv3", "bootargs-initrd", "initrd-above-4g"],
)
def test_dtc_decompiles_without_warnings(spec: BoardSpec) -> None:
    result = dtc("-I", "dtb", "-O", "dts", stdin=build_virt_fdt(spec))
    assert result.stderr == b""
    assert result.stdout.startswith(b"/dts-v1/;")


@needs_dtc
def test_blob_round_trips_through_dtc() -> None:
    blob = build_virt_fdt(board(cpus=2))
    dts = dtc("-I", "dtb", "-O", "dts", stdin=blob).stdout
    assert parse(dtc("-I", "dts", "-O", "dtb", stdin=dts).stdout) == parse(blob)


# -- QEMU's reference tree -------------------------------------------------------------------


@needs_dtc
def test_matches_qemu_reference_tree_node_by_node() -> None:
    reference = parse(dtc("-I", "dts", "-O", "dtb", stdin=REFERENCE_DTS.read_bytes()).stdout)
    # The omissions are real nodes of QEMU's tree, not typos that would hide a missing node
    # (a GICv2 board has the v2m frame, not the ITS: test_matches_qemu_dumpdtb sees that one).
    for omitted in OMITTED_NODES:
        assert any(path.startswith(omitted) for path in reference) == ("its@" not in omitted), omitted
    assert {"rng-seed", "kaslr-seed"} <= set(reference["/chosen"])
    assert_same_tree(parse(build_virt_fdt(board())), reference)


@needs_dtc
def test_reference_checks_catch_a_difference() -> None:
    reference = parse(dtc("-I", "dts", "-O", "dtb", stdin=REFERENCE_DTS.read_bytes()).stdout)
    with pytest.raises(AssertionError):
        assert_same_tree(parse(build_virt_fdt(board(cpus=2))), reference)


# -- QEMU generating trees during the test -------------------------------------------------


@needs_qemu
@pytest.mark.parametrize(("cpus", "gic_version"), [(2, 2), (2, 3), (4, 3)])
def test_matches_qemu_dumpdtb(tmp_path: Path, cpus: int, gic_version: int) -> None:
    qemu = parse(qemu_dtb(tmp_path, "-smp", str(cpus), machine=f"virt,gic-version={gic_version}"))
    msi_frame = {2: "/intc@8000000/v2m@8020000", 3: "/intc@8000000/its@8080000"}[gic_version]
    assert msi_frame in qemu
    assert_same_tree(parse(build_virt_fdt(board(cpus, gic_version))), qemu)


@needs_qemu
def test_chosen_matches_qemu_with_kernel_initrd_and_append(tmp_path: Path) -> None:
    kernel = tmp_path / "kernel.bin"
    kernel.write_bytes(bytes(4096))
    initrd = tmp_path / "initrd.img"
    initrd.write_bytes(bytes(1000))
    bootargs = "console=ttyAMA0 earlycon root=/dev/ram0"
    qemu = parse(
        qemu_dtb(tmp_path, "-kernel", str(kernel), "-initrd", str(initrd), "-append", bootargs)
    )
    chosen = qemu["/chosen"]
    (start,), (end,) = words(chosen["linux,initrd-start"]), words(chosen["linux,initrd-end"])
    assert end - start == 1000
    ours = parse(build_virt_fdt(board(bootargs=bootargs, initrd=(start, end))))
    assert_same_tree(ours, qemu)


@needs_qemu
def test_blob_header_matches_qemu(tmp_path: Path) -> None:
    qemu = libfdt.Fdt(qemu_dtb(tmp_path))
    ours = libfdt.Fdt(build_virt_fdt(board()))
    for field in ("magic", "version", "last_comp_version", "boot_cpuid_phys"):
        assert getattr(ours, field)() == getattr(qemu, field)(), field
    assert ours.num_mem_rsv() == qemu.num_mem_rsv() == 0


# -- contents that do not need a tool ------------------------------------------------------


def test_chosen_bootargs_and_initrd() -> None:
    spec = board(bootargs="quiet", initrd=(0x4800_0000, 0x4810_0000))
    chosen = parse(build_virt_fdt(spec))["/chosen"]
    assert chosen["bootargs"] == b"quiet\0"
    assert chosen["stdout-path"] == b"/pl011@9000000\0"
    assert chosen["linux,initrd-start"] == (0x4800_0000).to_bytes(4, "big")
    assert chosen["linux,initrd-end"] == (0x4810_0000).to_bytes(4, "big")


def test_chosen_without_boot_arguments_has_only_stdout_path() -> None:
    assert parse(build_virt_fdt(board()))["/chosen"] == {"stdout-path": b"/pl011@9000000\0"}


def test_initrd_above_4g_uses_two_cells() -> None:
    chosen = parse(build_virt_fdt(board(initrd=(0x1_4000_0000, 0x1_4001_0000))))["/chosen"]
    assert chosen["linux,initrd-start"] == (0x1_4000_0000).to_bytes(8, "big")
    assert chosen["linux,initrd-end"] == (0x1_4001_0000).to_bytes(8, "big")


@pytest.mark.parametrize("cpus", [1, 4])
def test_cpu_nodes(cpus: int) -> None:
    tree = parse(build_virt_fdt(board(cpus=cpus)))
    cpu_nodes = sorted(path for path in tree if path.startswith("/cpus/cpu@"))
    assert cpu_nodes == [f"/cpus/cpu@{n}" for n in range(cpus)]
    for n in range(cpus):
        node = tree[f"/cpus/cpu@{n}"]
        assert node["reg"] == n.to_bytes(4, "big")
        assert node["device_type"] == b"cpu\0"
        assert node["compatible"] == b"arm,cortex-a57\0"
        # QEMU (fdt_add_cpu_nodes) names the PSCI enable method only on SMP boards.
        assert ("enable-method" in node) == (cpus > 1)
        assert tree[f"/cpus/cpu-map/socket0/cluster0/core{n}"]["cpu"] == (f"/cpus/cpu@{n}",)


@pytest.mark.parametrize(
    ("cpus", "gic_version", "flags"), [(1, 2, 0x104), (4, 2, 0xF04), (4, 3, 0x004)]
)
def test_timer_ppi_cpu_masks(cpus: int, gic_version: int, flags: int) -> None:
    interrupts = parse(build_virt_fdt(board(cpus, gic_version)))["/timer"]["interrupts"]
    assert words(interrupts) == [1, 13, flags, 1, 14, flags, 1, 11, flags, 1, 10, flags]


def test_gicv3_node() -> None:
    intc = parse(build_virt_fdt(board(cpus=2, gic_version=3)))["/intc@8000000"]
    assert intc["compatible"] == b"arm,gic-v3\0"
    assert words(intc["reg"], 8) == [0x0800_0000, 0x1_0000, 0x080A_0000, 0xF6_0000]
    assert intc["#redistributor-regions"] == (1).to_bytes(4, "big")


def test_interrupt_parent_is_the_gic() -> None:
    assert parse(build_virt_fdt(board()))["/"]["interrupt-parent"] == ("/intc@8000000",)


def test_devices_other_than_a_uart_leave_stdout_path_out() -> None:
    spec = BoardSpec(RAM_BASE, RAM_SIZE, 1, 2, [Pl031()])
    assert "stdout-path" not in parse(build_virt_fdt(spec))["/chosen"]


def test_memory_node_follows_ram() -> None:
    spec = BoardSpec(RAM_BASE, 64 << 20, 1, 2, [])
    memory = parse(build_virt_fdt(spec))["/memory@40000000"]
    assert memory["reg"] == b"".join(v.to_bytes(4, "big") for v in (0, RAM_BASE, 0, 64 << 20))


@pytest.mark.parametrize(
    ("cpus", "gic_version", "message"),
    [
        (1, 4, "gic-version must be 2 or 3"),
        (9, 2, "GICv2 supports 1 to 8"),
        (0, 3, "GICv3 supports 1 to 123"),
    ],
)
def test_invalid_boards_are_one_clear_error(cpus: int, gic_version: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        board(cpus, gic_version)


def test_descending_initrd_is_rejected() -> None:
    with pytest.raises(ValueError, match="initrd range"):
        board(initrd=(0x4810_0000, 0x4800_0000))
