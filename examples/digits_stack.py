"""Measure the peak stack use of a Cortex-M4F image under QEMU (mps2-an386).

QEMU starts with RAM zeroed, and the digits example keeps everything on the
stack (its .data and .bss are empty). The script starts QEMU halted with
its GDB stub on a loopback port and sets a breakpoint on each semihosting
exit call. When the program stops at one, the script reads RAM through the
stub, and the lowest nonzero word marks the deepest stack write. A stack slot that was
only ever written with zeros is not seen, so the figure is a lower bound,
close to the true peak.

Needs qemu-system-arm and arm-none-eabi-objdump, and Python 3 alone.
Usage, from the repository root:
    cargo build --release --example digits --target thumbv7em-none-eabihf
    python3 examples/digits_stack.py target/thumbv7em-none-eabihf/release/examples/digits
Prints the peak in bytes; with --max BYTES, exits 1 when the peak is larger.
"""

import argparse
import re
import socket
import subprocess
import sys
import time

# The RAM region of boards/mps2-an386/memory.x. cortex-m-rt puts the initial
# stack pointer at its end.
RAM_START = 0x20000000
RAM_END = 0x20400000
READ_CHUNK = 0x800


def exit_call_sites(elf):
    """Addresses of `movs r0, #0x20` (SYS_EXIT_EXTENDED) followed by the
    semihosting `bkpt 0xab`."""
    disassembly = subprocess.run(
        ["arm-none-eabi-objdump", "-d", elf], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    sites = []
    for line, following in zip(disassembly, disassembly[1:]):
        match = re.match(r"\s*([0-9a-f]+):\s+2020\s+movs\s+r0, #32", line)
        if match and re.search(r"bkpt\s+0x00ab", following):
            sites.append(int(match.group(1), 16))
    return sites


class GdbRemote:
    """The few packets of the GDB remote serial protocol that are needed."""

    def __init__(self, port):
        deadline = time.monotonic() + 10
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        # One small packet at a time: without this, Nagle's algorithm and
        # delayed ACKs add tens of milliseconds to every request.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def command(self, text):
        checksum = sum(text.encode()) % 256
        self.sock.sendall(f"${text}#{checksum:02x}".encode())
        while True:
            match = re.search(rb"\$([^#]*)#[0-9a-fA-F]{2}", self.buffer)
            if match:
                self.buffer = self.buffer[match.end() :]
                self.sock.sendall(b"+")
                return match.group(1).decode()
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"QEMU closed the GDB connection during {text[:20]!r}")
            self.buffer += chunk


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("elf", help="the thumbv7em-none-eabihf image")
    parser.add_argument("--max", type=int, help="fail when the peak is above this many bytes")
    args = parser.parse_args()

    sites = exit_call_sites(args.elf)
    if not sites:
        sys.exit(f"{args.elf}: no semihosting exit call found")

    port = free_port()
    qemu = subprocess.Popen(
        [
            "qemu-system-arm", "-cpu", "cortex-m4", "-machine", "mps2-an386", "-nographic",
            "-semihosting-config", "enable=on,target=native",
            "-gdb", f"tcp:127.0.0.1:{port}", "-S", "-kernel", args.elf,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        gdb = GdbRemote(port)
        for site in sites:
            reply = gdb.command(f"Z0,{site:x},2")
            if reply != "OK":
                sys.exit(f"setting a breakpoint at {site:#x} failed: {reply!r}")
        stop = gdb.command("c")
        if not stop.startswith("T05"):
            sys.exit(f"the program did not stop at an exit call: {stop!r}")

        lowest = None
        for address in range(RAM_START, RAM_END, READ_CHUNK):
            data = bytes.fromhex(gdb.command(f"m{address:x},{READ_CHUNK:x}"))
            offset = next((i for i in range(0, len(data), 4) if any(data[i : i + 4])), None)
            if offset is not None:
                lowest = address + offset
                break
    finally:
        qemu.kill()
        qemu.wait()

    if lowest is None:
        sys.exit("RAM is all zeros: the program wrote nothing to its stack")
    peak = RAM_END - lowest
    print(f"peak stack: {peak} bytes (deepest write at {lowest:#x})")
    if args.max is not None and peak > args.max:
        print(f"peak stack {peak} bytes is above the limit of {args.max} bytes")
        sys.exit(1)


if __name__ == "__main__":
    main()
