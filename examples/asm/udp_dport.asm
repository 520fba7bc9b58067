# Returns the UDP destination port of an Ethernet/IPv4/UDP packet, or 0.
# Calling convention of `pybpf run-raw`: r1 = packet, r2 = its length.
# Conformance-suite syntax; llvm-objdump syntax (r0 = 0) works too.
    mov %r0, 0
    jlt %r2, 34, out            # Ethernet (14) + minimal IPv4 header (20)
    ldxh %r3, [%r1+12]          # EtherType, network byte order
    be16 %r3
    jne %r3, 0x0800, out        # not IPv4
    ldxb %r3, [%r1+23]          # IPv4 protocol
    jne %r3, 17, out            # not UDP
    ldxb %r4, [%r1+14]          # version + IHL
    and %r4, 0x0f
    lsh %r4, 2                  # header length in bytes
    add %r4, 14                 # offset of the UDP header
    mov %r5, %r4
    add %r5, 8
    jgt %r5, %r2, out           # UDP header past the end
    add %r1, %r4
    ldxh %r0, [%r1+2]           # destination port
    be16 %r0
out:
    exit
