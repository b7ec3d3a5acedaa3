-- linkstack.lua: Wireshark dissectors for the units that linkstack moves and captures.
--
-- Where the units travel:
--  * in linkstack's pcap files (linkstack/capture/pcap.py), one UDP port per layer
--    (source and destination alike):
--
--      cltu          47001  CLTU: start sequence, BCH(63,56) codeblocks, tail
--      tm_cadu       47002  TM CADU: ASM + randomized Reed-Solomon codeblock
--      aos_cadu      47003  AOS CADU: the same around an AOS frame
--      tc_frame      47011  TC Transfer Frame (CCSDS 232.0-B-4)
--      tm_frame      47012  TM Transfer Frame (CCSDS 132.0-B-3)
--      aos_frame     47013  AOS Transfer Frame (CCSDS 732.0-B-4)
--      uslp_frame    47014  USLP Transfer Frame (CCSDS 732.1-B-2), of every kind of link
--      space_packet  47020  Space Packet (CCSDS 133.0-B-2): Wireshark's ccsds
--
--  * between linkstack's daemons, a pair of UDP ports per end (the ground, a block of
--    satellites: daemon.channel_port + j, daemon.node_port + j: linkstack/daemon/wire.py),
--    each datagram a 4-octet link header (0x4C, then the link's index k in 24 bits:
--    linkstack/capture/link_header.py) and the unit. Those are found without any port:
--    a heuristic (linkstack.unit) takes a UDP payload that starts, after a link header
--    if there is one, with the CLTU start sequence EB90 (whole codeblocks, a tail or a
--    right first parity) or with the ASM 1ACFFC1D (a CADU: TM or AOS from the frame's
--    version field, or from the scenario's CADU lengths). A scenario file made by
--    `linkstack wireshark --scenario FILE` adds every port of that scenario, the link
--    each index names and the names of the nodes, spacecraft ids and relay node
--    numbers. (Daemons before the link header took a port per link and sent bare
--    units; scenario files of formats 1 and 2, made then, still read so.)
--
-- What is decoded, and how (see wireshark/README.md for the whole list):
--  * CLTUs: every codeblock's information octets, parity and filler bit, its
--    BCH syndrome and whether it is right, corrected (one wrong bit, as a
--    receiver in the correcting mode would) or refused; the tail sequence. The
--    information octets, corrected, are derandomized with the TC sequence
--    (preference) and the TC frame inside is dissected.
--  * CADUs: the ASM, then the codeblock is derandomized with the TM/AOS
--    sequence (preference) and the frame at its start is dissected. The
--    Reed-Solomon check symbols are shown, not decoded: a frame hit by bit
--    errors is shown as received (its FECF says so). The frame length is found
--    by trying the CCSDS RS(255,223)/(255,239) codes at depths 1-8 (and no
--    code) until the frame's FECF matches, or set by a preference.
--  * TC, TM and AOS frames: every header field, the TC segment header and the
--    COP-1 control commands (Unlock, Set V(R)), the TM secondary header, the
--    AOS signaling field, insert zone and M_PDU header, the OCF as a CLCW, the
--    FECF with its CRC check.
--  * USLP frames (frames.protocol = "uslp"), found by their version (1100) inside CLTUs and
--    CADUs and on port 47014: the primary header (16-bit SCID, source-or-destination flag,
--    VCID, MAP ID, frame length, bypass and protocol control command flags, OCF flag, the
--    VC frame count of its length: N(S) on an uplink), the transfer frame data field
--    header (construction rule, UPID, first header pointer), the Space Packets (rule 000:
--    from the pointer, spanning frames per VC and MAP; rule 111: whole packets; an
--    uplink's segments, rules 100/101/110, joined per MAP in N(S) order as TC's), the OCF
--    as a CLCW, the FECF, SDLS as on the other frames.
--  * SDLS (CCSDS 355.0-B-2), where a scenario file's security associations or the
--    preference linkstack.sdls.spi_lengths say a frame is protected: the security
--    header (SPI, IV, sequence number, pad length) and trailer (MAC); the data
--    between them goes on to packets for clear and authentication-only SAs, and is
--    shown as encrypted, never parsed, for encryption. No decryption: Wireshark 4.0's
--    Lua has no cipher (see wireshark/README.md).
--  * Space Packets inside TM/AOS frames (from the First Header Pointer) and TC
--    frames (blocked or segmented) go to Wireshark's ccsds dissector; packets
--    that span frames are reassembled per virtual channel (TC: per VC and MAP,
--    following N(S) as FARM-1 would) on the first pass over the capture.
--  * linkstack's messages in those packets (payloads/messages.py): CBOR queries and
--    acks on APID 0x100, answers, chunks and errors on 0x101, and the relay envelope
--    on 0x102 (version, hop limit, source and destination node, then the message);
--    a message segmented over packets is reassembled.
--
-- Written for linkstack. Tested with tshark 4.0 (Lua 5.2); it keeps to the Lua
-- API of Wireshark 3.x/4.x and to what Lua 5.1-5.4 share. Install: see
-- wireshark/README.md, or `linkstack wireshark --install`.

local LINKSTACK_LUA_VERSION = "1.3"
if rawget(_G, "set_plugin_info") then
    set_plugin_info({
        version = LINKSTACK_LUA_VERSION,
        description = "linkstack: CLTUs, CADUs, TC/TM/AOS frames and CBOR messages over UDP",
    })
end

-- ---------------------------------------------------------------------------
-- bit operations on every Lua Wireshark has shipped with
-- ---------------------------------------------------------------------------
local band, bor, bxor, rshift, lshift
do
    local lib = rawget(_G, "bit32") or rawget(_G, "bit")
    if lib then
        band, bor, bxor, rshift, lshift = lib.band, lib.bor, lib.bxor, lib.rshift, lib.lshift
    else -- Lua 5.3+ without a bit library: native operators, hidden from older parsers
        local chunk = assert(load([[
            return function(a, b) return a & b end, function(a, b) return a | b end,
                   function(a, b) return a ~ b end, function(a, n) return a >> n end,
                   function(a, n) return (a << n) & 0xFFFFFFFF end
        ]]))
        band, bor, bxor, rshift, lshift = chunk()
    end
end
local unpack = table.unpack or unpack

local function popcount(x)
    local n = 0
    while x ~= 0 do
        n = n + band(x, 1)
        x = rshift(x, 1)
    end
    return n
end

-- ---------------------------------------------------------------------------
-- tables: CRC-16-CCITT, the pseudo-random sequences, BCH(63,56)
-- ---------------------------------------------------------------------------

-- CRC-16-CCITT (polynomial 0x1021, initial value 0xFFFF, no reflection): the FECF
local CRC16 = {}
for i = 0, 255 do
    local c = lshift(i, 8)
    for _ = 1, 8 do
        if band(c, 0x8000) ~= 0 then
            c = band(bxor(lshift(c, 1), 0x1021), 0xFFFF)
        else
            c = band(lshift(c, 1), 0xFFFF)
        end
    end
    CRC16[i] = c
end

-- CRC of octets first..last (1-based, inclusive) of the Lua string s
local function crc16(s, first, last)
    local crc = 0xFFFF
    local byte = string.byte
    for i = first, last do
        crc = bxor(band(lshift(crc, 8), 0xFFFF), CRC16[bxor(rshift(crc, 8), byte(s, i))])
    end
    return crc
end

-- An 8-stage LFSR from all ones, a[n+8] = XOR of a[n+t] for t in taps, 255 octets
-- of output bits, most significant first (CCSDS 131.0-B-4 s10, 231.0-B-4 s6).
local function pn_sequence(taps)
    local state = { 1, 1, 1, 1, 1, 1, 1, 1 }
    local out = {}
    for k = 1, 255 do
        local octet = 0
        for _ = 1, 8 do
            octet = octet * 2 + state[1]
            local fb = 0
            for _, t in ipairs(taps) do
                fb = bxor(fb, state[t + 1])
            end
            table.remove(state, 1)
            state[8] = fb
        end
        out[k] = octet
    end
    return out
end
local PN_TM = pn_sequence({ 0, 3, 5, 7 }) -- h(x) = x^8 + x^7 + x^5 + x^3 + 1
local PN_TC = pn_sequence({ 0, 1, 2, 3, 4, 6 }) -- h(x) = x^8 + x^6 + x^4 + x^3 + x^2 + x + 1

-- a list of octets (numbers) -> Lua string
local function octets_to_string(list)
    local parts = {}
    for i = 1, #list, 200 do
        parts[#parts + 1] = string.char(unpack(list, i, math.min(i + 199, #list)))
    end
    return table.concat(parts)
end

-- XOR the octets of string s with a pseudo-random sequence, restarted at its start
local function derandomize(s, pn)
    local out = {}
    local byte = string.byte
    for i = 1, #s do
        out[i] = bxor(byte(s, i), pn[(i - 1) % 255 + 1])
    end
    return octets_to_string(out)
end

-- BCH(63,56) of 231.0-B-4: g(x) = x^7 + x^6 + x^2 + 1, parity complemented, then
-- a filler bit 0. BCH7[r ^ octet] steps the 7-bit remainder (kept in the top
-- 7 bits of an octet) by one information octet.
local BCH7 = {}
for i = 0, 255 do
    local x = i
    for _ = 1, 8 do
        if band(x, 0x80) ~= 0 then
            x = band(bxor(lshift(x, 1), 0x8A), 0xFF)
        else
            x = band(lshift(x, 1), 0xFF)
        end
    end
    BCH7[i] = x
end

-- (syndrome, filler bit) of an 8-octet codeblock given as a list of numbers
local function bch_syndrome(b)
    local r = 0
    for j = 1, 7 do
        r = BCH7[bxor(r, b[j])]
    end
    local expected = band(bxor(r, 0xFF), 0xFE)
    return rshift(bxor(expected, b[8]), 1), band(b[8], 1)
end

-- syndrome of one wrong code bit -> {octet index (1-based), bit mask}
local BCH_SINGLE = {}
for o = 1, 8 do
    for bitno = 0, 7 do
        if not (o == 8 and bitno == 0) then -- the filler bit is not a code bit
            local b = { 0, 0, 0, 0, 0, 0, 0, 0xFE } -- the codeblock of seven zero octets
            b[o] = bxor(b[o], lshift(1, bitno))
            local syn = bch_syndrome(b)
            BCH_SINGLE[syn] = { o, lshift(1, bitno) }
        end
    end
end

local TAIL_SEQUENCE = "\197\197\197\197\197\197\197\121" -- C5C5C5C5C5C5C579
local ASM_VALUE = 0x1ACFFC1D
local FHP_IDLE_ONLY = 0x7FE
local FHP_NO_HEADER = 0x7FF
local IDLE_APID = 0x7FF
-- linkstack's messages (payloads/messages.py, linkstack/runtime/routing.py)
local QUERY_APID = 0x100 -- queries and acks, ground -> satellite
local ANSWER_APID = 0x101 -- answers, chunks and errors, satellite -> ground
local RELAY_APID = 0x102 -- a message in a relay envelope
local ENVELOPE_LEN = 6 -- version, hop limit, source node, destination node
local MAX_MESSAGE_LEN = 1048576 -- octets; a longer reassembly is dropped, as linkstack's
-- of the scenario files `linkstack wireshark` writes: 3 has "ends" (the daemons' ports
-- are an end's, and the link header names the link); 2 has "sdls" and a port per link;
-- 1 (before it) is read as saying nothing of SDLS
local SCENARIO_FORMATS = { [1] = true, [2] = true, [3] = true }
local SCENARIO_FORMATS_TEXT = "1 to 3"
-- the daemons' link header (linkstack/capture/link_header.py)
local LINK_HEADER_MAGIC = 0x4C
local LINK_HEADER_LEN = 4
-- SDLS (CCSDS 355.0-B-2; linkstack/ccsds/sdls_layout.py)
local SPI_LEN = 2
local SDLS_SERVICES = { clear = true, auth = true, enc = true, aead = true }
local SDLS_READABLE = { clear = true, auth = true } -- data in the clear: packets go on
local SDLS_MAX_FIELD = 64 -- octets: no SA has a longer IV, sequence number, pad or MAC
local FRAME_LINKS = { tc = "uplink", tm = "downlink", aos = "isl" } -- a scenario's link kinds

-- ---------------------------------------------------------------------------
-- protocols and fields
-- ---------------------------------------------------------------------------
local p_cltu = Proto("linkstack.cltu", "linkstack CLTU (CCSDS 231.0-B-4)")
local p_cadu = Proto("linkstack.cadu", "linkstack CADU (CCSDS 131.0-B-4)")
local p_tc = Proto("linkstack.tc", "linkstack TC Transfer Frame (CCSDS 232.0-B-4)")
local p_tm = Proto("linkstack.tm", "linkstack TM Transfer Frame (CCSDS 132.0-B-3)")
local p_aos = Proto("linkstack.aos", "linkstack AOS Transfer Frame (CCSDS 732.0-B-4)")
local p_uslp = Proto("linkstack.uslp", "linkstack USLP Transfer Frame (CCSDS 732.1-B-2)")
local p_clcw = Proto("linkstack.clcw", "linkstack CLCW (CCSDS 232.1-B-2)")
local p_unit = Proto("linkstack.unit", "linkstack unit (a CLTU or a CADU, found by its sync pattern)")
local p_link = Proto("linkstack.link", "linkstack link (from a scenario)")
local p_spp = Proto("linkstack.space_packet", "linkstack Space Packet (port 47020)")
local p_msg = Proto("linkstack.msg", "linkstack message (CBOR)")
local p_relay = Proto("linkstack.relay", "linkstack relay envelope")
local p_sdls = Proto("linkstack.sdls", "linkstack SDLS security header and trailer (CCSDS 355.0-B-2)")

local STATUS = { [0] = "Bad", [1] = "Good" }
local BCH_STATUS = { [0] = "Good", [1] = "Corrected (one wrong bit)", [2] = "Bad (refused)" }
local SEQ_FLAGS = {
    [0] = "Continuation segment",
    [1] = "First segment",
    [2] = "Last segment",
    [3] = "Unsegmented",
}
local TC_TYPES = { [0] = "AD", [2] = "BD", [3] = "BC", [1] = "invalid (bypass 0, control 1)" }
local CC_CODES = { [0x00] = "Unlock", [0x82] = "Set V(R)" }
local MSG_TYPES = { q = "query", a = "answer", c = "chunk", e = "error", k = "ack" }
local SEGMENTS = { [0] = "continuation", [1] = "first", [2] = "last", [3] = "unsegmented" }

local f = {}
-- CLTU
f.cltu_start = ProtoField.uint16("linkstack.cltu.start", "Start sequence", base.HEX)
f.cltu_codeblocks = ProtoField.uint16("linkstack.cltu.codeblocks", "Codeblocks", base.DEC)
f.cltu_bch_errors = ProtoField.uint16("linkstack.cltu.bch_errors",
    "Codeblocks with a wrong parity", base.DEC)
f.cltu_refused = ProtoField.uint16("linkstack.cltu.refused",
    "Codeblocks refused (more than one wrong bit)", base.DEC)
f.cltu_cb = ProtoField.bytes("linkstack.cltu.codeblock", "Codeblock")
f.cltu_cb_info = ProtoField.bytes("linkstack.cltu.codeblock.info", "Information octets")
f.cltu_cb_parity = ProtoField.uint8("linkstack.cltu.codeblock.parity", "Parity (7 bits)", base.HEX,
    nil, 0xFE)
f.cltu_cb_filler = ProtoField.uint8("linkstack.cltu.codeblock.filler", "Filler bit", base.DEC, nil,
    0x01)
f.cltu_cb_expected = ProtoField.uint8("linkstack.cltu.codeblock.parity_expected",
    "Parity expected (7 bits)", base.HEX)
f.cltu_cb_syndrome = ProtoField.uint8("linkstack.cltu.codeblock.syndrome", "Syndrome", base.HEX)
f.cltu_cb_ok = ProtoField.bool("linkstack.cltu.codeblock.parity_ok", "Parity right")
f.cltu_cb_status = ProtoField.uint8("linkstack.cltu.codeblock.status", "BCH status", base.DEC,
    BCH_STATUS)
f.cltu_tail = ProtoField.bytes("linkstack.cltu.tail", "Tail sequence")
f.cltu_randomized = ProtoField.bool("linkstack.cltu.randomized", "Derandomized (TC sequence)")
f.cltu_fill = ProtoField.uint8("linkstack.cltu.fill", "Fill octets after the frame", base.DEC)
f.cltu_trailing = ProtoField.bytes("linkstack.cltu.trailing", "Octets after the last codeblock")
-- CADU
f.cadu_asm = ProtoField.uint32("linkstack.cadu.asm", "Attached Sync Marker", base.HEX)
f.cadu_asm_errors = ProtoField.uint8("linkstack.cadu.asm_errors", "ASM bit errors", base.DEC)
f.cadu_codeblock = ProtoField.bytes("linkstack.cadu.codeblock", "Codeblock (as received)")
f.cadu_frame_length = ProtoField.uint16("linkstack.cadu.frame_length", "Frame length", base.DEC)
f.cadu_rs_octets = ProtoField.uint16("linkstack.cadu.rs_check_octets",
    "Reed-Solomon check octets", base.DEC)
f.cadu_rs = ProtoField.bytes("linkstack.cadu.rs_check",
    "Reed-Solomon check symbols (not decoded)")
f.cadu_randomized = ProtoField.bool("linkstack.cadu.randomized", "Derandomized (TM/AOS sequence)")
-- TC
f.tc_version = ProtoField.uint16("linkstack.tc.version", "Version", base.DEC, nil, 0xC000)
f.tc_bypass = ProtoField.uint16("linkstack.tc.bypass", "Bypass flag", base.DEC, nil, 0x2000)
f.tc_cc = ProtoField.uint16("linkstack.tc.control_command", "Control command flag", base.DEC, nil,
    0x1000)
f.tc_spare = ProtoField.uint16("linkstack.tc.spare", "Spare", base.DEC, nil, 0x0C00)
f.tc_scid = ProtoField.uint16("linkstack.tc.scid", "Spacecraft ID", base.DEC, nil, 0x03FF)
f.tc_vcid = ProtoField.uint16("linkstack.tc.vcid", "Virtual channel ID", base.DEC, nil, 0xFC00)
f.tc_length = ProtoField.uint16("linkstack.tc.length", "Frame length (minus one)", base.DEC, nil,
    0x03FF)
f.tc_ns = ProtoField.uint8("linkstack.tc.ns", "Frame sequence number N(S)", base.DEC)
f.tc_type = ProtoField.string("linkstack.tc.type", "Frame type")
f.tc_seq_flags = ProtoField.uint8("linkstack.tc.seg.seq_flags", "Sequence flags", base.DEC,
    SEQ_FLAGS, 0xC0)
f.tc_map_id = ProtoField.uint8("linkstack.tc.seg.map_id", "MAP ID", base.DEC, nil, 0x3F)
f.tc_data = ProtoField.bytes("linkstack.tc.data", "Data")
f.tc_cc_code = ProtoField.uint8("linkstack.tc.cc.code", "Control command", base.HEX, CC_CODES)
f.tc_cc_vr = ProtoField.uint8("linkstack.tc.cc.vr", "V(R)", base.DEC)
f.tc_accepted = ProtoField.bool("linkstack.tc.in_sequence",
    "In sequence (taken into packet reassembly)")
f.tc_fecf = ProtoField.uint16("linkstack.tc.fecf", "FECF", base.HEX)
f.tc_fecf_status = ProtoField.uint8("linkstack.tc.fecf.status", "FECF status", base.DEC, STATUS)
f.tc_fecf_calc = ProtoField.uint16("linkstack.tc.fecf.calculated", "FECF calculated", base.HEX)
f.tc_trailing = ProtoField.bytes("linkstack.tc.trailing", "Trailing octets")
-- TM
f.tm_version = ProtoField.uint16("linkstack.tm.version", "Version", base.DEC, nil, 0xC000)
f.tm_scid = ProtoField.uint16("linkstack.tm.scid", "Spacecraft ID", base.DEC, nil, 0x3FF0)
f.tm_vcid = ProtoField.uint16("linkstack.tm.vcid", "Virtual channel ID", base.DEC, nil, 0x000E)
f.tm_ocf_flag = ProtoField.uint16("linkstack.tm.ocf_flag", "OCF flag", base.DEC, nil, 0x0001)
f.tm_mc_count = ProtoField.uint8("linkstack.tm.mc_count", "Master channel frame count", base.DEC)
f.tm_vc_count = ProtoField.uint8("linkstack.tm.vc_count", "Virtual channel frame count", base.DEC)
f.tm_sec_flag = ProtoField.uint16("linkstack.tm.sec_hdr_flag", "Secondary header flag", base.DEC,
    nil, 0x8000)
f.tm_sync_flag = ProtoField.uint16("linkstack.tm.sync_flag", "Synchronization flag", base.DEC,
    nil, 0x4000)
f.tm_order_flag = ProtoField.uint16("linkstack.tm.packet_order_flag", "Packet order flag",
    base.DEC, nil, 0x2000)
f.tm_seg_len_id = ProtoField.uint16("linkstack.tm.segment_length_id", "Segment length ID",
    base.DEC, nil, 0x1800)
f.tm_fhp = ProtoField.uint16("linkstack.tm.fhp", "First header pointer", base.DEC, nil, 0x07FF)
f.tm_sec_version = ProtoField.uint8("linkstack.tm.sec.version", "Secondary header version",
    base.DEC, nil, 0xC0)
f.tm_sec_length = ProtoField.uint8("linkstack.tm.sec.length", "Secondary header length (minus one)",
    base.DEC, nil, 0x3F)
f.tm_sec_data = ProtoField.bytes("linkstack.tm.sec.data", "Secondary header data")
f.tm_data = ProtoField.bytes("linkstack.tm.data", "Data field")
f.tm_ocf = ProtoField.bytes("linkstack.tm.ocf", "Operational control field")
f.tm_fecf = ProtoField.uint16("linkstack.tm.fecf", "FECF", base.HEX)
f.tm_fecf_status = ProtoField.uint8("linkstack.tm.fecf.status", "FECF status", base.DEC, STATUS)
f.tm_fecf_calc = ProtoField.uint16("linkstack.tm.fecf.calculated", "FECF calculated", base.HEX)
-- AOS
f.aos_version = ProtoField.uint16("linkstack.aos.version", "Version", base.DEC, nil, 0xC000)
f.aos_scid = ProtoField.uint16("linkstack.aos.scid", "Spacecraft ID", base.DEC, nil, 0x3FC0)
f.aos_vcid = ProtoField.uint16("linkstack.aos.vcid", "Virtual channel ID", base.DEC, nil, 0x003F)
f.aos_vc_count = ProtoField.uint24("linkstack.aos.vc_count", "Virtual channel frame count",
    base.DEC)
f.aos_replay = ProtoField.uint8("linkstack.aos.replay", "Replay flag", base.DEC, nil, 0x80)
f.aos_usage = ProtoField.uint8("linkstack.aos.count_usage", "VC frame count usage flag", base.DEC,
    nil, 0x40)
f.aos_sig_spare = ProtoField.uint8("linkstack.aos.signaling_spare", "Spare", base.DEC, nil, 0x30)
f.aos_cycle = ProtoField.uint8("linkstack.aos.count_cycle", "VC frame count cycle", base.DEC, nil,
    0x0F)
f.aos_full_count = ProtoField.uint32("linkstack.aos.full_count",
    "VC frame count with its cycle", base.DEC)
f.aos_insert = ProtoField.bytes("linkstack.aos.insert_zone", "Insert zone")
f.aos_mpdu_spare = ProtoField.uint16("linkstack.aos.mpdu.spare", "M_PDU spare", base.DEC, nil,
    0xF800)
f.aos_fhp = ProtoField.uint16("linkstack.aos.mpdu.fhp", "First header pointer", base.DEC, nil,
    0x07FF)
f.aos_data = ProtoField.bytes("linkstack.aos.data", "Data field")
f.aos_ocf = ProtoField.bytes("linkstack.aos.ocf", "Operational control field")
f.aos_fecf = ProtoField.uint16("linkstack.aos.fecf", "FECF", base.HEX)
f.aos_fecf_status = ProtoField.uint8("linkstack.aos.fecf.status", "FECF status", base.DEC, STATUS)
f.aos_fecf_calc = ProtoField.uint16("linkstack.aos.fecf.calculated", "FECF calculated", base.HEX)
-- the spacecraft of a SCID, when a scenario names it
f.tc_spacecraft = ProtoField.string("linkstack.tc.spacecraft", "Spacecraft (scenario)")
f.tm_spacecraft = ProtoField.string("linkstack.tm.spacecraft", "Spacecraft (scenario)")
f.aos_spacecraft = ProtoField.string("linkstack.aos.spacecraft", "Spacecraft (scenario)")
-- USLP
f.uslp_version = ProtoField.uint32("linkstack.uslp.version", "Version", base.DEC, nil, 0xF0000000)
f.uslp_scid = ProtoField.uint32("linkstack.uslp.scid", "Spacecraft ID", base.DEC, nil, 0x0FFFF000)
f.uslp_dest = ProtoField.uint32("linkstack.uslp.dest", "Source-or-destination identifier",
    base.DEC, { [0] = "source", [1] = "destination" }, 0x00000800)
f.uslp_vcid = ProtoField.uint32("linkstack.uslp.vcid", "Virtual channel ID", base.DEC, nil,
    0x000007E0)
f.uslp_map_id = ProtoField.uint32("linkstack.uslp.map_id", "MAP ID", base.DEC, nil, 0x0000001E)
f.uslp_truncated = ProtoField.uint32("linkstack.uslp.eofph",
    "End of frame primary header (truncated frame)", base.DEC, nil, 0x00000001)
f.uslp_length = ProtoField.uint16("linkstack.uslp.length", "Frame length (minus one)", base.DEC)
f.uslp_bypass = ProtoField.uint8("linkstack.uslp.bypass", "Bypass/sequence control flag",
    base.DEC, nil, 0x80)
f.uslp_cmd = ProtoField.uint8("linkstack.uslp.protocol_command",
    "Protocol control command flag", base.DEC, nil, 0x40)
f.uslp_spare = ProtoField.uint8("linkstack.uslp.spare", "Spare", base.DEC, nil, 0x30)
f.uslp_ocf_flag = ProtoField.uint8("linkstack.uslp.ocf_flag", "OCF flag", base.DEC, nil, 0x08)
f.uslp_count_len = ProtoField.uint8("linkstack.uslp.vc_count_len",
    "VC frame count length (octets)", base.DEC, nil, 0x07)
f.uslp_vc_count = ProtoField.uint32("linkstack.uslp.vc_count", "VC frame count", base.DEC)
f.uslp_ns = ProtoField.uint32("linkstack.uslp.ns", "Frame sequence number N(S) (COP-1)",
    base.DEC)
f.uslp_type = ProtoField.string("linkstack.uslp.type", "COP-1 frame type")
f.uslp_in_sequence = ProtoField.bool("linkstack.uslp.in_sequence",
    "In sequence (taken into packet reassembly)")
f.uslp_insert = ProtoField.bytes("linkstack.uslp.insert_zone", "Insert zone")
f.uslp_rule = ProtoField.uint8("linkstack.uslp.tfdf.rule", "TFDZ construction rule", base.DEC, {
    [0] = "packets spanning frames (pointer)", [1] = "MAPA_SDU start", [2] = "MAPA_SDU continuing",
    [3] = "octet stream", [4] = "start of a segment", [5] = "continuing segment",
    [6] = "last segment", [7] = "no segmentation" }, 0xE0)
f.uslp_upid = ProtoField.uint8("linkstack.uslp.tfdf.upid", "USLP protocol identifier (UPID)",
    base.DEC, { [0] = "Space Packets", [1] = "COP-1 control commands", [31] = "idle data" },
    0x1F)
f.uslp_pointer = ProtoField.uint16("linkstack.uslp.tfdf.fhp", "First header pointer", base.DEC)
f.uslp_data = ProtoField.bytes("linkstack.uslp.data", "Transfer frame data zone")
f.uslp_segment = ProtoField.bytes("linkstack.uslp.segment",
    "Segment of a packet (not reassembled here: linkstack replay does)")
f.uslp_ocf = ProtoField.bytes("linkstack.uslp.ocf", "Operational control field")
f.uslp_fecf = ProtoField.uint16("linkstack.uslp.fecf", "FECF", base.HEX)
f.uslp_fecf_status = ProtoField.uint8("linkstack.uslp.fecf.status", "FECF status", base.DEC,
    STATUS)
f.uslp_fecf_calc = ProtoField.uint16("linkstack.uslp.fecf.calculated", "FECF calculated", base.HEX)
f.uslp_spacecraft = ProtoField.string("linkstack.uslp.spacecraft", "Spacecraft (scenario)")
-- the link a datagram is on (from a scenario)
f.link_scenario = ProtoField.string("linkstack.link.scenario", "Scenario")
f.link_name = ProtoField.string("linkstack.link.name", "Link")
f.link_magic = ProtoField.uint8("linkstack.link.magic", "Link header format (0x4c: 1)", base.HEX)
f.link_index = ProtoField.uint24("linkstack.link.index", "Link number k", base.DEC)
f.link_kind = ProtoField.string("linkstack.link.kind", "Kind")
f.link_from = ProtoField.string("linkstack.link.from", "From")
f.link_to = ProtoField.string("linkstack.link.to", "To")
f.link_leg = ProtoField.string("linkstack.link.leg", "Leg")
-- linkstack messages
f.msg_length = ProtoField.uint32("linkstack.msg.length", "Message length (octets)", base.DEC)
f.msg_segments = ProtoField.uint16("linkstack.msg.segments",
    "Space Packets the message was reassembled from", base.DEC)
f.msg_segment = ProtoField.bytes("linkstack.msg.segment", "Message segment")
f.msg_version = ProtoField.uint32("linkstack.msg.version", "Version", base.DEC)
f.msg_type = ProtoField.string("linkstack.msg.type", "Type")
f.msg_id = ProtoField.string("linkstack.msg.id", "Id")
f.msg_prompt = ProtoField.string("linkstack.msg.prompt", "Prompt")
f.msg_stream = ProtoField.bool("linkstack.msg.stream", "Stream")
f.msg_t_s = ProtoField.double("linkstack.msg.t_s", "t_s (seconds since the scenario epoch)")
f.msg_text = ProtoField.string("linkstack.msg.text", "Text")
f.msg_prompt_tokens = ProtoField.uint32("linkstack.msg.prompt_tokens", "Prompt tokens", base.DEC)
f.msg_completion_tokens = ProtoField.uint32("linkstack.msg.completion_tokens",
    "Completion tokens", base.DEC)
f.msg_finish_reason = ProtoField.string("linkstack.msg.finish_reason", "Finish reason")
f.msg_backend = ProtoField.string("linkstack.msg.backend", "Backend")
f.msg_model = ProtoField.string("linkstack.msg.model", "Model")
f.msg_random_weights = ProtoField.bool("linkstack.msg.random_weights", "Random weights")
f.msg_satellite = ProtoField.string("linkstack.msg.satellite", "Satellite")
f.msg_timing_source = ProtoField.string("linkstack.msg.timing_source", "Inference timing")
f.msg_battery_wh = ProtoField.double("linkstack.msg.battery_wh", "Battery charge (Wh)")
f.msg_seq = ProtoField.uint32("linkstack.msg.seq", "Chunk number", base.DEC)
f.msg_code = ProtoField.string("linkstack.msg.code", "Error code")
f.msg_detail = ProtoField.string("linkstack.msg.detail", "Detail")
f.msg_ack_id = ProtoField.string("linkstack.msg.ack_id", "Id acknowledged")
f.msg_param = ProtoField.string("linkstack.msg.param", "Generation parameter")
f.msg_time = ProtoField.string("linkstack.msg.onboard_time", "Onboard time")
f.msg_entry = ProtoField.string("linkstack.msg.entry", "Entry")
-- the relay envelope
f.relay_version = ProtoField.uint8("linkstack.relay.version", "Envelope version", base.DEC)
f.relay_hop_limit = ProtoField.uint8("linkstack.relay.hop_limit", "Hop limit", base.DEC)
f.relay_src = ProtoField.uint16("linkstack.relay.src", "Source node", base.DEC)
f.relay_dst = ProtoField.uint16("linkstack.relay.dst", "Destination node", base.DEC)
f.relay_src_name = ProtoField.string("linkstack.relay.src_name", "Source node name (scenario)")
f.relay_dst_name = ProtoField.string("linkstack.relay.dst_name",
    "Destination node name (scenario)")
-- SDLS: the security header and trailer of a protected frame
f.sdls_spi = ProtoField.uint16("linkstack.sdls.spi", "Security Parameter Index (SPI)", base.DEC)
f.sdls_iv = ProtoField.bytes("linkstack.sdls.iv", "Initialization vector (IV)")
f.sdls_sn = ProtoField.bytes("linkstack.sdls.sn", "Sequence number")
f.sdls_pad = ProtoField.bytes("linkstack.sdls.pad", "Pad length")
f.sdls_mac = ProtoField.bytes("linkstack.sdls.mac", "Message authentication code (MAC)")
f.sdls_service = ProtoField.string("linkstack.sdls.service", "Service of the SA")
f.sdls_sa_from = ProtoField.string("linkstack.sdls.sa_from", "SA field lengths from")
f.sdls_encrypted = ProtoField.bytes("linkstack.sdls.encrypted", "Encrypted data")
f.sdls_unread = ProtoField.bytes("linkstack.sdls.unread", "Frame data field (not read)")
-- packet zones (TM and AOS) and TC data fields
f.zone_cont = ProtoField.bytes("linkstack.zone.continuation",
    "End of a packet begun in an earlier frame")
f.zone_partial = ProtoField.bytes("linkstack.zone.partial", "Start of a packet continued in a later frame")
f.zone_idle = ProtoField.bytes("linkstack.zone.idle", "Idle data")
f.zone_packets = ProtoField.uint16("linkstack.zone.packets", "Space Packets handed to ccsds",
    base.DEC)
f.zone_reassembled = ProtoField.uint16("linkstack.zone.reassembled",
    "Space Packets reassembled from earlier frames", base.DEC)
f.zone_junk = ProtoField.bytes("linkstack.zone.unparsed", "Octets that are not whole Space Packets")
-- CLCW
f.clcw_type = ProtoField.uint32("linkstack.clcw.type", "Control word type", base.DEC, nil,
    0x80000000)
f.clcw_version = ProtoField.uint32("linkstack.clcw.version", "CLCW version", base.DEC, nil,
    0x60000000)
f.clcw_status = ProtoField.uint32("linkstack.clcw.status", "Status field", base.DEC, nil,
    0x1C000000)
f.clcw_cop = ProtoField.uint32("linkstack.clcw.cop", "COP in effect", base.DEC,
    { [1] = "COP-1" }, 0x03000000)
f.clcw_vcid = ProtoField.uint32("linkstack.clcw.vcid", "Virtual channel ID", base.DEC, nil,
    0x00FC0000)
f.clcw_spare = ProtoField.uint32("linkstack.clcw.spare", "Spare", base.DEC, nil, 0x00030000)
f.clcw_no_rf = ProtoField.uint32("linkstack.clcw.no_rf", "No RF available", base.DEC, nil, 0x8000)
f.clcw_no_bitlock = ProtoField.uint32("linkstack.clcw.no_bitlock", "No bit lock", base.DEC, nil,
    0x4000)
f.clcw_lockout = ProtoField.uint32("linkstack.clcw.lockout", "Lockout", base.DEC, nil, 0x2000)
f.clcw_wait = ProtoField.uint32("linkstack.clcw.wait", "Wait", base.DEC, nil, 0x1000)
f.clcw_retransmit = ProtoField.uint32("linkstack.clcw.retransmit", "Retransmit", base.DEC, nil,
    0x0800)
f.clcw_farm_b = ProtoField.uint32("linkstack.clcw.farm_b", "FARM-B counter", base.DEC, nil, 0x0600)
f.clcw_spare2 = ProtoField.uint32("linkstack.clcw.spare2", "Spare", base.DEC, nil, 0x0100)
f.clcw_report = ProtoField.uint32("linkstack.clcw.report_value", "Report value N(R)", base.DEC,
    nil, 0x000000FF)

local function fields_of(prefix)
    local out = {}
    for k, v in pairs(f) do
        if k:sub(1, #prefix) == prefix then
            out[#out + 1] = v
        end
    end
    return out
end

p_cltu.fields = fields_of("cltu_")
p_cadu.fields = fields_of("cadu_")
p_tc.fields = fields_of("tc_")
p_tm.fields = fields_of("tm_")
do -- the packet zone fields belong to the AOS protocol (one owner each)
    local aos = fields_of("aos_")
    for _, v in ipairs(fields_of("zone_")) do
        aos[#aos + 1] = v
    end
    p_aos.fields = aos
end
p_uslp.fields = fields_of("uslp_")
p_clcw.fields = fields_of("clcw_")
p_link.fields = fields_of("link_")
p_msg.fields = fields_of("msg_")
p_relay.fields = fields_of("relay_")
p_sdls.fields = fields_of("sdls_")

local e = {
    fecf = ProtoExpert.new("linkstack.fecf.bad", "FECF does not match the frame",
        expert.group.CHECKSUM, expert.severity.ERROR),
    bch = ProtoExpert.new("linkstack.cltu.bch.bad", "BCH codeblock refused",
        expert.group.CHECKSUM, expert.severity.ERROR),
    bch_corrected = ProtoExpert.new("linkstack.cltu.bch.corrected",
        "BCH codeblock with one wrong bit (corrected)", expert.group.CHECKSUM,
        expert.severity.WARN),
    start = ProtoExpert.new("linkstack.cltu.start.bad", "Not a CLTU start sequence (EB90)",
        expert.group.MALFORMED, expert.severity.ERROR),
    tail = ProtoExpert.new("linkstack.cltu.tail.missing", "No tail sequence",
        expert.group.MALFORMED, expert.severity.WARN),
    asm = ProtoExpert.new("linkstack.cadu.asm.bad", "ASM differs from 1ACFFC1D",
        expert.group.MALFORMED, expert.severity.WARN),
    malformed = ProtoExpert.new("linkstack.malformed", "Malformed unit",
        expert.group.MALFORMED, expert.severity.ERROR),
    sequence = ProtoExpert.new("linkstack.sequence", "Sequence", expert.group.SEQUENCE,
        expert.severity.NOTE),
    msg = ProtoExpert.new("linkstack.msg.bad", "Not a linkstack message",
        expert.group.MALFORMED, expert.severity.WARN),
    relay = ProtoExpert.new("linkstack.relay.bad", "Not a relay envelope",
        expert.group.MALFORMED, expert.severity.WARN),
    spi_unknown = ProtoExpert.new("linkstack.sdls.spi_unknown",
        "SPI of no security association of this link", expert.group.SECURITY,
        expert.severity.WARN),
    sdls_short = ProtoExpert.new("linkstack.sdls.short",
        "Frame too short for its SA's security header and trailer", expert.group.MALFORMED,
        expert.severity.ERROR),
    sdls_pref = ProtoExpert.new("linkstack.sdls.pref.bad",
        "Preference linkstack.sdls.spi_lengths: an entry is not SPI:IV:SN:PAD:MAC[:SERVICE]",
        expert.group.PROTOCOL, expert.severity.WARN),
}
p_cltu.experts = { e.bch, e.bch_corrected, e.start, e.tail }
p_cadu.experts = { e.asm }
p_tc.experts = { e.fecf, e.malformed, e.sequence } -- shared with TM and AOS
p_msg.experts = { e.msg }
p_relay.experts = { e.relay }
p_sdls.experts = { e.spi_unknown, e.sdls_short, e.sdls_pref }

-- preferences
p_cltu.prefs.randomized = Pref.bool("TC frames are randomized", true,
    "The TC randomizer (231.0-B-4 s6) was applied before BCH encoding (linkstack's default)")
local RS_AUTO = -1
p_cadu.prefs.randomized = Pref.bool("Codeblocks are randomized", true,
    "The TM/AOS randomizer (131.0-B-4 s10) covers the codeblock (linkstack's default)")
p_cadu.prefs.rs_check = Pref.enum("Reed-Solomon check octets", RS_AUTO,
    "Octets of Reed-Solomon check symbols at the end of each codeblock, 2E x depth I: "
        .. "32 per depth for RS(255,223), 16 per depth for RS(255,239); linkstack's default "
        .. "is 160 (RS(255,223), I=5). auto: try the CCSDS codes until the frame's FECF "
        .. "matches, else 160", {
        { 1, "auto", RS_AUTO },
        { 2, "0", 0 },
        { 3, "16", 16 },
        { 4, "32", 32 },
        { 5, "48", 48 },
        { 6, "64", 64 },
        { 7, "80", 80 },
        { 8, "96", 96 },
        { 9, "128", 128 },
        { 10, "160", 160 },
        { 11, "256", 256 },
    }, false)
p_tc.prefs.fecf = Pref.bool("Frames have an FECF", true, "TC managed parameter")
p_tc.prefs.segment_header = Pref.bool("Frames have a segment header (MAP service)", true,
    "TC managed parameter")
p_tm.prefs.fecf = Pref.bool("Frames have an FECF", true, "TM managed parameter")
p_aos.prefs.fecf = Pref.bool("Frames have an FECF", true, "AOS managed parameter")
p_aos.prefs.ocf = Pref.bool("Frames have an OCF", false, "AOS managed parameter")
p_aos.prefs.insert_zone = Pref.uint("Insert zone length (octets)", 0, "AOS managed parameter")
p_uslp.prefs.fecf = Pref.bool("Frames have an FECF", true, "USLP managed parameter")
p_uslp.prefs.insert_zone = Pref.uint("Insert zone length (octets)", 0, "USLP managed parameter")
p_sdls.prefs.spi_lengths = Pref.string("SA field lengths: SPI:IV:SN:PAD:MAC[:SERVICE], ...", "",
    "For captures without a scenario file that says it: the security associations whose "
        .. "frames carry an SDLS security header and trailer, as SPI:IV:SN:PAD:MAC (octets, "
        .. "as `linkstack decode --spi-lengths`), and optionally :clear, :auth, :enc or "
        .. ":aead; several separated by commas. With any given, every TC, TM and AOS frame "
        .. "(of the virtual channels below) is read as protected. The data of clear and auth "
        .. "SAs goes on to packets; of others, or without a service, it is not read. "
        .. "Empty: none. On the links of a scenario file that turns SDLS on, its SAs count")
p_sdls.prefs.vcids = Pref.string("Virtual channels under SDLS (with the SA lengths above)", "",
    "VCIDs separated by commas, e.g. 0 or 0,1; empty: every virtual channel")

-- candidate check-octet counts in the order they are tried (linkstack's default first)
local RS_CANDIDATES = { 160, 0, 32, 64, 96, 128, 256, 16, 48, 80 }

local ccsds = nil
local function ccsds_dissector()
    if ccsds == nil then
        local ok, d = pcall(Dissector.get, "ccsds")
        ccsds = (ok and d) or false
    end
    return ccsds or nil
end

-- ---------------------------------------------------------------------------
-- state for packets that span frames (filled on the first pass, in frame order)
-- ---------------------------------------------------------------------------
local zone_state = {} -- stream key -> { next = count, pending = string }
local zone_done = {} -- frame number .. stream key -> list of reassembled packets
local tc_state = {} -- VC key -> { vr = N(S) expected }; VC..MAP key -> { pending = string }
local tc_done = {}
local msg_state = {} -- APID stream key -> { pending = string, parts = n, next = count }
local msg_done = {} -- frame number | stream key | count of the last segment -> { octets, parts }

local function reset_state()
    zone_state, zone_done, tc_state, tc_done, msg_state, msg_done = {}, {}, {}, {}, {}, {}
end
p_tm.init = reset_state

local function stream_key(pinfo, ...)
    local parts = { tostring(pinfo.src), tostring(pinfo.dst), tostring(pinfo.dst_port) }
    for _, v in ipairs({ ... }) do
        parts[#parts + 1] = tostring(v)
    end
    return table.concat(parts, "|")
end

-- the length of the Space Packet whose header starts at octet i (1-based) of s
local function packet_length_at(s, i)
    local hi, lo = string.byte(s, i + 4, i + 5)
    return 7 + hi * 256 + lo
end

-- ---------------------------------------------------------------------------
-- scenarios: the links of each port, the names of nodes and spacecraft
-- ---------------------------------------------------------------------------
local scenarios = {} -- in the order they were added
-- UDP port -> { sc = scenario, to_channel = bool, and link = link on a port of one link
-- (formats 1 and 2), or headed = true on an end's port (format 3: the link header says)
local links_by_port = {}

-- the scenario a datagram belongs to: its port's, else the only one loaded
local function scenario_of(pinfo)
    local at = links_by_port[pinfo.dst_port]
    if at ~= nil then
        return at.sc
    end
    if #scenarios == 1 then
        return scenarios[1]
    end
    return nil
end

-- "69 (CS-06)": a number and the name a scenario gives it in names_key
local function named(pinfo, names_key, number)
    local sc = scenario_of(pinfo)
    local name = sc and sc[names_key] and sc[names_key][number]
    return name, name and string.format("%d (%s)", number, name) or tostring(number)
end

-- the spacecraft of a frame's SCID as a generated field; returns the SCID as text
local function add_spacecraft(t, pinfo, field, range, scid)
    local name, text = named(pinfo, "scids", scid)
    if name ~= nil then
        t:add(field, range, name):set_generated()
    end
    return text
end

-- what the messages of one top-level unit said, for the Info column
local notes = {}

-- ---------------------------------------------------------------------------
-- CBOR (RFC 8949), as far as linkstack's messages need it
-- ---------------------------------------------------------------------------
local CBOR_MAX_DEPTH = 16

local function cbor_uint(s, pos, len) -- big-endian, exact up to 2^53
    local v = 0
    for i = pos, pos + len - 1 do
        v = v * 256 + s:byte(i)
    end
    return v
end

-- IEEE 754 binary16/32/64 from their bits (2^e rather than math.ldexp, gone in 5.3)
local function ieee_float(sign_bit, exp, mant, exp_bits, mant_bits)
    local sign = sign_bit and -1 or 1
    local bias = 2 ^ (exp_bits - 1) - 1
    if exp == 0 then
        return sign * mant * 2 ^ (1 - bias - mant_bits)
    elseif exp == 2 ^ exp_bits - 1 then
        return mant == 0 and sign * math.huge or 0 / 0
    end
    return sign * (1 + mant / 2 ^ mant_bits) * 2 ^ (exp - bias)
end

local function cbor_float(s, pos, len)
    if len == 2 then
        local h = cbor_uint(s, pos, 2)
        return ieee_float(h >= 0x8000, band(rshift(h, 10), 0x1F), band(h, 0x3FF), 5, 10)
    elseif len == 4 then
        local w = cbor_uint(s, pos, 4)
        return ieee_float(w >= 0x80000000, band(rshift(w, 23), 0xFF), band(w, 0x7FFFFF), 8, 23)
    end
    local hi, lo = cbor_uint(s, pos, 4), cbor_uint(s, pos + 4, 4)
    return ieee_float(hi >= 0x80000000, band(rshift(hi, 20), 0x7FF),
        band(hi, 0xFFFFF) * 4294967296 + lo, 11, 52)
end

-- a number as text: integers without a fraction, others to 10 significant digits
local function number_text(v)
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then
        return string.format("%d", v)
    end
    return string.format("%.10g", v)
end

-- One CBOR item of the string s at pos (1-based): returns the item and the position
-- after it, or nil and why not. An item: { kind = "uint" | "nint" | "bytes" | "text" |
-- "array" | "map" | "tag" | "float" | "bool" | "null" | "undefined" | "simple",
-- value, items (arrays and maps: keys and values in turn; a tag: its item), first and
-- last (its octets), data (where a string's content starts) }.
local function cbor_read(s, pos, depth)
    local n = #s
    if pos > n then
        return nil, "the message ends inside an item"
    end
    if depth > CBOR_MAX_DEPTH then
        return nil, string.format("items nested more than %d deep", CBOR_MAX_DEPTH)
    end
    local ib = s:byte(pos)
    local major, info = rshift(ib, 5), band(ib, 0x1F)
    local item = { first = pos }
    pos = pos + 1
    local arg
    if info < 24 then
        arg = info
    elseif info <= 27 then
        local len = 2 ^ (info - 24)
        if pos + len - 1 > n then
            return nil, "the message ends inside an item's head"
        end
        if major == 7 and info >= 25 then
            item.kind, item.value, item.last = "float", cbor_float(s, pos, len), pos + len - 1
            return item, pos + len
        end
        arg = cbor_uint(s, pos, len)
        pos = pos + len
    elseif info == 31 then
        return nil, "an indefinite length (linkstack writes none)"
    else
        return nil, string.format("reserved additional information %d", info)
    end
    if major == 0 then
        item.kind, item.value = "uint", arg
    elseif major == 1 then
        item.kind, item.value = "nint", -1 - arg
    elseif major == 2 or major == 3 then
        if arg > n - pos + 1 then
            return nil, string.format("a string of %s octets where %d are left", number_text(arg),
                n - pos + 1)
        end
        item.kind = (major == 2) and "bytes" or "text"
        item.value, item.data = s:sub(pos, pos + arg - 1), pos
        pos = pos + arg
    elseif major == 4 or major == 5 then
        if arg > n - pos + 1 then
            return nil, string.format("%s items where %d octets are left", number_text(arg),
                n - pos + 1)
        end
        item.kind = (major == 4) and "array" or "map"
        item.items = {}
        for i = 1, (major == 5) and 2 * arg or arg do
            local sub, nxt = cbor_read(s, pos, depth + 1)
            if sub == nil then
                return nil, nxt
            end
            item.items[i] = sub
            pos = nxt
        end
    elseif major == 6 then
        local sub, nxt = cbor_read(s, pos, depth + 1)
        if sub == nil then
            return nil, nxt
        end
        item.kind, item.value, item.items = "tag", arg, { sub }
        pos = nxt
    elseif arg == 20 or arg == 21 then
        item.kind, item.value = "bool", arg == 21
    elseif arg == 22 then
        item.kind = "null"
    elseif arg == 23 then
        item.kind = "undefined"
    else
        item.kind, item.value = "simple", arg
    end
    item.last = pos - 1
    return item, pos
end

-- the octets of item within tvb (0-based offsets of the message's tvb)
local function item_range(tvb, item)
    return tvb(item.first - 1, item.last - item.first + 1)
end

-- A text item's string as Wireshark reads UTF-8 (bad sequences replaced), and its
-- range. Wireshark's strings end at a NUL: a NUL shows as U+2400, the pieces between
-- are read apart.
local NUL_SIGN = "\226\144\128"
local function item_string(tvb, item)
    local n = #item.value
    if n == 0 then
        return "", item_range(tvb, item)
    end
    local r = tvb(item.data - 1, n)
    if not item.value:find("\0", 1, true) then
        return r:string(ENC_UTF_8), r
    end
    local parts, pos = {}, 1
    while pos <= n do
        local nul = item.value:find("\0", pos, true) or (n + 1)
        if nul > pos then
            parts[#parts + 1] = tvb(item.data - 2 + pos, nul - pos):string(ENC_UTF_8)
        end
        if nul <= n then
            parts[#parts + 1] = NUL_SIGN
        end
        pos = nul + 1
    end
    return table.concat(parts), r
end

-- UTF-8 text cut to at most longest octets, at a character boundary (Wireshark cuts
-- long labels at an octet, which may fall inside a character)
local function shortened(text, longest)
    if #text <= longest then
        return text
    end
    local cut = longest
    while cut > 1 and band(text:byte(cut + 1), 0xC0) == 0x80 do
        cut = cut - 1
    end
    return text:sub(1, cut) .. "..."
end

-- an item in a few words, for labels
local function item_text(tvb, item)
    local k = item.kind
    if k == "uint" or k == "nint" or k == "float" then
        return number_text(item.value)
    elseif k == "text" then
        return '"' .. shortened((item_string(tvb, item)), 60) .. '"'
    elseif k == "bytes" then
        local hex = item.value:sub(1, 16):gsub(".", function(c)
            return string.format("%02x", c:byte())
        end)
        return "h'" .. hex .. (#item.value > 16 and "...'" or "'")
    elseif k == "bool" then
        return tostring(item.value)
    elseif k == "null" or k == "undefined" then
        return k
    elseif k == "array" then
        return string.format("[%d items]", #item.items)
    elseif k == "map" then
        return string.format("{%d entries}", #item.items / 2)
    elseif k == "tag" then
        return string.format("tag %s", number_text(item.value))
    end
    return string.format("simple(%d)", item.value)
end

-- the short keys of a message (payloads/messages.py): label, field, kinds it may have
local MSG_KEYS = {
    v = { "Version", f.msg_version, { uint = true } },
    t = { "Type", f.msg_type, { text = true } },
    id = { "Id", f.msg_id, { text = true } },
    pr = { "Prompt", f.msg_prompt, { text = true } },
    pa = { "Generation parameters", f.msg_param, { map = true } },
    st = { "Stream", f.msg_stream, { bool = true } },
    ts = { "t_s", f.msg_t_s, { float = true, null = true } },
    tx = { "Text", f.msg_text, { text = true } },
    pt = { "Prompt tokens", f.msg_prompt_tokens, { uint = true } },
    ct = { "Completion tokens", f.msg_completion_tokens, { uint = true } },
    fr = { "Finish reason", f.msg_finish_reason, { text = true } },
    be = { "Backend", f.msg_backend, { text = true } },
    mo = { "Model", f.msg_model, { text = true } },
    rw = { "Random weights", f.msg_random_weights, { bool = true } },
    sa = { "Satellite", f.msg_satellite, { text = true } },
    -- version 3: what timed the inference legs (left out: the host's stopwatch)
    tm = { "Inference timing", f.msg_timing_source, { text = true } },
    -- version 3: the battery's charge at the inference's end (left out: no power model)
    bw = { "Battery charge (Wh)", f.msg_battery_wh, { float = true } },
    ti = { "Onboard times", f.msg_time, { map = true } },
    sq = { "Chunk number", f.msg_seq, { uint = true } },
    co = { "Error code", f.msg_code, { text = true } },
    de = { "Detail", f.msg_detail, { text = true } },
    ids = { "Ids acknowledged", f.msg_ack_id, { array = true } },
}
local SUB_KEYS = {
    pa = { n = "max_new_tokens", T = "temperature", p = "top_p", th = "thinking", s = "seed" },
    ti = {
        qc = "query_complete_t_s", ["is"] = "inference_start_t_s", ft = "first_token_t_s",
        ie = "inference_end_t_s", aq = "answer_queued_t_s", ttft = "ttft_s",
        gen = "generate_s", tps = "tokens_per_s",
        pw = "power_asked_t_s", -- version 2: the power model asked (the power_wait starts)
    },
}

-- one entry of a message map (key and value items): its field, or a labelled line
local function add_entry(t, tvb, key_item, value, values)
    local key = key_item.kind == "text" and key_item.value or nil
    local spec = key and MSG_KEYS[key]
    local whole = tvb(key_item.first - 1, value.last - key_item.first + 1)
    if not spec then
        local item = t:add(f.msg_entry, whole, item_text(tvb, key_item) .. ": "
            .. item_text(tvb, value))
        if key == nil then
            item:add_proto_expert_info(e.msg, "a key must be text")
        end
        return
    end
    local label, field, kinds = spec[1], spec[2], spec[3]
    local k = value.kind
    if not kinds[k] then
        t:add(f.msg_entry, whole, string.format("%s (%s): %s", label, key, item_text(tvb, value)))
            :add_proto_expert_info(e.msg, string.format("%s (%s) must not be %s", label, key, k))
        return
    end
    if k == "uint" and value.value > 0xFFFFFFFF then -- more than any linkstack count
        t:add(f.msg_entry, whole, string.format("%s (%s): %s", label, key, item_text(tvb, value)))
            :add_proto_expert_info(e.msg, string.format("%s (%s) is out of range", label, key))
        return
    end
    if k == "text" then
        local text, r = item_string(tvb, value)
        values[key] = text
        local item = t:add(field, r, text)
        if key == "t" and MSG_TYPES[text] ~= nil then
            item:append_text(" (" .. MSG_TYPES[text] .. ")")
        end
    elseif k == "uint" or k == "bool" or k == "float" then
        values[key] = value.value
        t:add(field, whole, value.value)
    elseif k == "null" then
        t:add(whole, label .. ": null (not known)")
    elseif k == "map" then -- pa, ti: "name = value" lines
        local sub = t:add(whole, string.format("%s (%d)", label, #value.items / 2))
        local names = SUB_KEYS[key]
        for i = 1, #value.items, 2 do
            local sk, sv = value.items[i], value.items[i + 1]
            local name = (sk.kind == "text") and (names[sk.value] or sk.value) or item_text(tvb, sk)
            sub:add(field, tvb(sk.first - 1, sv.last - sk.first + 1),
                name .. " = " .. item_text(tvb, sv))
        end
    else -- ids: an array of text
        local sub = t:add(whole, string.format("%s (%d)", label, #value.items))
        local ids = {}
        for _, id in ipairs(value.items) do
            if id.kind == "text" then
                local text, r = item_string(tvb, id)
                sub:add(field, r, text)
                ids[#ids + 1] = text
            else
                sub:add(f.msg_entry, item_range(tvb, id), item_text(tvb, id))
                    :add_proto_expert_info(e.msg, "an id acknowledged must be text")
            end
        end
        values[key] = table.concat(ids, " ")
    end
end

-- A message (the whole CBOR octets in tvb): its map, entry by entry. Returns a few
-- words for the Info column.
local function dissect_message(tvb, pinfo, tree, segments)
    local t = tree:add(p_msg, tvb())
    t:add(f.msg_length, tvb(), tvb:len()):set_generated()
    if segments ~= nil then
        t:add(f.msg_segments, tvb(), segments):set_generated()
    end
    local s = tvb:raw()
    local root, after = cbor_read(s, 1, 0)
    if root == nil then
        t:add_proto_expert_info(e.msg, "not CBOR: " .. after)
        t:append_text(": not CBOR")
        return "not a message (not CBOR)"
    end
    if root.kind ~= "map" then
        t:add_proto_expert_info(e.msg, "a message is a CBOR map, not " .. root.kind)
        t:append_text(": not a map")
        return "not a message (not a map)"
    end
    local values = {}
    for i = 1, #root.items, 2 do
        add_entry(t, tvb, root.items[i], root.items[i + 1], values)
    end
    if after <= #s then
        t:add(tvb(after - 1), string.format("%d octets after the map", #s - after + 1))
            :add_proto_expert_info(e.msg, "octets after the message's map")
    end
    local kind = values.t and MSG_TYPES[values.t]
    if kind == nil then
        t:add_proto_expert_info(e.msg, values.t and ("unknown message type "
            .. shortened(values.t, 40)) or "no message type (t)")
        kind = "message"
    end
    if values.v == nil or values.v < 1 then
        t:add_proto_expert_info(e.msg, "no version (v) of 1 or more")
    end
    local note = kind
    if values.t == "k" then
        note = note .. " " .. shortened(values.ids or "", 80)
    elseif values.id ~= nil then
        note = note .. " " .. shortened(values.id, 64)
    end
    if values.t == "c" and values.sq ~= nil then
        note = note .. " #" .. number_text(values.sq)
    elseif values.t == "e" and values.co ~= nil then
        note = note .. " " .. shortened(values.co, 40)
    end
    if values.sa ~= nil and values.sa ~= "" then
        note = note .. " from " .. shortened(values.sa, 40)
    end
    t:append_text(": " .. note)
    return note
end

-- A relay envelope and the message in it (tvb: the packet's data). Returns a few words.
local function dissect_relay(tvb, pinfo, tree)
    local n = tvb:len()
    local t = tree:add(p_relay, tvb(0, math.min(n, ENVELOPE_LEN)))
    if n <= ENVELOPE_LEN then
        t:add_proto_expert_info(e.relay, string.format(
            "an envelope holds a %d-octet header and a message, got %d octets", ENVELOPE_LEN, n))
        return "relay envelope (too short)"
    end
    local version = tvb(0, 1):uint()
    local v_item = t:add(f.relay_version, tvb(0, 1))
    if version ~= 1 then
        v_item:add_proto_expert_info(e.relay, string.format("envelope version %d is not 1", version))
    end
    t:add(f.relay_hop_limit, tvb(1, 1))
    local ends = {}
    for i, key in ipairs({ "src", "dst" }) do
        local r = tvb(2 * i, 2)
        local item = t:add(f["relay_" .. key], r)
        local name, text = named(pinfo, "nodes", r:uint())
        if name ~= nil then
            item:append_text(" (" .. name .. ")")
            t:add(f["relay_" .. key .. "_name"], r, name):set_generated()
        end
        ends[i] = name or ("node " .. text)
    end
    if tvb(2, 2):uint() == tvb(4, 2):uint() then
        t:add_proto_expert_info(e.relay, "source and destination are the same node")
    end
    t:append_text(string.format(": %s -> %s, hop limit %d", ends[1], ends[2], tvb(1, 1):uint()))
    local note = dissect_message(tvb(ENVELOPE_LEN):tvb(), pinfo, tree)
    return string.format("relayed %s -> %s: %s", ends[1], ends[2], note)
end

-- reassembly of messages segmented over Space Packets (first/continuation/last), per
-- APID and stream, on the first pass, in sequence-count order as payloads' Reassembler
-- The message in a Space Packet on one of linkstack's APIDs (tvb: the whole packet),
-- added under tree; its note goes to the Info column.
local function message_packet(tvb, pinfo, tree)
    local n = tvb:len()
    if n < 7 then
        return
    end
    local w0 = tvb(0, 2):uint()
    local apid = band(w0, 0x7FF)
    if (apid ~= QUERY_APID and apid ~= ANSWER_APID and apid ~= RELAY_APID)
        or band(w0, 0xE800) ~= 0 then -- version 0 and no secondary header, as linkstack's
        return
    end
    local w1 = tvb(2, 2):uint()
    local flags, count = rshift(w1, 14), band(w1, 0x3FFF)
    local plen = 7 + tvb(4, 2):uint()
    if plen > n then
        return
    end
    local data = tvb(6, plen - 6)
    local mtvb, parts = data:tvb(), nil
    if flags ~= 3 then
        local key = stream_key(pinfo, "msg", apid)
        local done_key = table.concat({ tostring(pinfo.number), key, tostring(count) }, "|")
        if not pinfo.visited then
            local st = msg_state[key]
            if st == nil then
                st = {}
                msg_state[key] = st
            end
            local piece = data:raw()
            if flags == 1 then
                st.pending, st.parts = piece, 1
            elseif st.pending ~= nil and st.next == count
                and #st.pending + #piece <= MAX_MESSAGE_LEN then
                st.pending, st.parts = st.pending .. piece, st.parts + 1
                if flags == 2 then
                    msg_done[done_key] = { st.pending, st.parts }
                    st.pending = nil
                end
            else -- a gap, or a segment without its first: the message is lost
                st.pending = nil
            end
            st.next = (count + 1) % 16384
        end
        tree:add(f.msg_segment, data):append_text(string.format(" (%s, APID 0x%03x, count %d)",
            SEGMENTS[flags], apid, count))
        local done = msg_done[done_key]
        if done == nil then
            return
        end
        mtvb = ByteArray.new(done[1], true):tvb("Reassembled message")
        parts = done[2]
    end
    local note
    if apid == RELAY_APID then
        note = dissect_relay(mtvb, pinfo, tree)
    else
        note = dissect_message(mtvb, pinfo, tree, parts)
    end
    notes[#notes + 1] = note
end

local function call_ccsds(tvb, pinfo, tree)
    local d = ccsds_dissector()
    if d then
        local ok = pcall(d.call, d, tvb, pinfo, tree)
        if not ok then
            tree:add(tvb(), "(Wireshark's ccsds dissector could not decode this Space Packet)")
        end
    else
        tree:add(tvb(), "Space Packet (no ccsds dissector in this Wireshark)")
    end
    message_packet(tvb, pinfo, tree)
end

local function packet_from_string(s, pinfo, tree, label)
    local ptvb = ByteArray.new(s, true):tvb(label)
    call_ccsds(ptvb, pinfo, tree)
end

-- Space Packets of a TM data field or AOS packet zone: zone = tvb(zoff, zlen)
-- Returns (packets handed over, idle packets not counted; packets reassembled).
local function packet_zone(tvb, zoff, zlen, fhp, pinfo, tree, key, count, modulo)
    local done_key = tostring(pinfo.number) .. "|" .. key
    local limit = (fhp == FHP_NO_HEADER) and zlen or math.min(fhp, zlen)
    if not pinfo.visited then
        local st = zone_state[key]
        if st == nil then
            st = {}
            zone_state[key] = st
        end
        if st.next ~= nil and st.next ~= count then
            st.pending = nil -- frames were lost: the packet in progress is gone
        end
        st.next = (count + 1) % modulo
        local completed = {}
        if fhp == FHP_IDLE_ONLY then
            st.pending = nil
        else
            if st.pending ~= nil then
                local pend = st.pending .. tvb:raw(zoff, limit)
                st.pending = nil
                if #pend >= 6 then
                    local need = packet_length_at(pend, 1)
                    if need == #pend then
                        completed[1] = pend
                    elseif need > #pend and fhp == FHP_NO_HEADER then
                        st.pending = pend
                    end -- anything else contradicts the header pointer: dropped
                elseif fhp == FHP_NO_HEADER then
                    st.pending = pend
                end
            end
            if fhp < zlen then
                local pos = fhp
                st.pending = nil
                while pos < zlen do
                    local rem = zlen - pos
                    local plen = (rem >= 6) and (7 + tvb(zoff + pos + 4, 2):uint()) or nil
                    if plen == nil or plen > rem then
                        st.pending = tvb:raw(zoff + pos, rem)
                        break
                    end
                    pos = pos + plen
                end
            end
        end
        if #completed > 0 then -- most frames complete nothing: keep no entry for them
            zone_done[done_key] = completed
        end
    end
    local completed = zone_done[done_key] or {}
    local handed = 0
    if fhp == FHP_IDLE_ONLY then
        tree:add(f.zone_idle, tvb(zoff, zlen))
        return handed, 0
    end
    if limit > 0 then
        local cont = tree:add(f.zone_cont, tvb(zoff, limit))
        for _, s in ipairs(completed) do
            cont:append_text(string.format(" (completes a %d-octet packet)", #s))
            packet_from_string(s, pinfo, cont, "Reassembled Space Packet")
            handed = handed + 1
        end
    end
    if fhp < zlen then
        local pos = fhp
        while pos < zlen do
            local rem = zlen - pos
            local plen = (rem >= 6) and (7 + tvb(zoff + pos + 4, 2):uint()) or nil
            if plen == nil or plen > rem then
                local item = tree:add(f.zone_partial, tvb(zoff + pos, rem))
                if plen ~= nil then
                    item:append_text(string.format(" (%d of %d octets here)", rem, plen))
                end
                break
            end
            call_ccsds(tvb(zoff + pos, plen):tvb(), pinfo, tree)
            if band(tvb(zoff + pos, 2):uint(), 0x7FF) ~= IDLE_APID then
                handed = handed + 1 -- idle packets are shown, not counted
            end
            pos = pos + plen
        end
    end
    return handed, #completed
end

-- whole Space Packets back to back in the string s; returns the list and the octets left
local function split_packets(s)
    local out, pos = {}, 1
    while #s - pos + 1 >= 7 do
        local plen = packet_length_at(s, pos)
        if plen > #s - pos + 1 then
            break
        end
        out[#out + 1] = s:sub(pos, pos + plen - 1)
        pos = pos + plen
    end
    return out, s:sub(pos)
end

-- ---------------------------------------------------------------------------
-- FECF and CLCW
-- ---------------------------------------------------------------------------
local function add_fecf(tree, tvb, flen, f_value, f_status, f_calc)
    local raw = tvb:raw(0, flen)
    local got = tvb(flen - 2, 2):uint()
    local want = crc16(raw, 1, flen - 2)
    local item = tree:add(f_value, tvb(flen - 2, 2))
    local ok = (got == want)
    item:add(f_status, tvb(flen - 2, 2), ok and 1 or 0):set_generated()
    item:add(f_calc, tvb(flen - 2, 2), want):set_generated()
    if ok then
        item:append_text(" [correct]")
    else
        item:append_text(string.format(" [incorrect, should be 0x%04x]", want))
        item:add_proto_expert_info(e.fecf)
    end
    return ok
end

local function dissect_clcw(tvb, pinfo, tree)
    local word = tvb(0, 4):uint()
    local t = tree:add(p_clcw, tvb(0, 4))
    local r = tvb(0, 4)
    t:add(f.clcw_type, r)
    if band(word, 0x80000000) ~= 0 then
        t:append_text(": not a CLCW (control word type 1)")
        return
    end
    for _, k in ipairs({ "version", "status", "cop", "vcid", "spare", "no_rf", "no_bitlock",
        "lockout", "wait", "retransmit", "farm_b", "spare2", "report" }) do
        t:add(f["clcw_" .. k], r)
    end
    local flags = {}
    if band(word, 0x2000) ~= 0 then flags[#flags + 1] = "Lockout" end
    if band(word, 0x1000) ~= 0 then flags[#flags + 1] = "Wait" end
    if band(word, 0x0800) ~= 0 then flags[#flags + 1] = "Retransmit" end
    if band(word, 0x8000) ~= 0 then flags[#flags + 1] = "No RF" end
    if band(word, 0x4000) ~= 0 then flags[#flags + 1] = "No bit lock" end
    t:append_text(string.format(", VC %d, N(R) %d%s", band(rshift(word, 18), 0x3F),
        band(word, 0xFF), #flags > 0 and (", " .. table.concat(flags, ", ")) or ""))
end
p_clcw.dissector = function(tvb, pinfo, tree)
    if tvb:len() >= 4 then
        dissect_clcw(tvb, pinfo, tree)
    end
end

-- ---------------------------------------------------------------------------
-- pieces the frame dissectors share
-- ---------------------------------------------------------------------------
-- the first header pointer in range (its low 11 bits), annotated; returns it and its
-- summary text
local function add_fhp(tree, field, range)
    local fhp = band(range:uint(), 0x7FF)
    local item = tree:add(field, range)
    if fhp == FHP_NO_HEADER then
        item:append_text(" (no packet header starts in this frame)")
    elseif fhp == FHP_IDLE_ONLY then
        item:append_text(" (only idle data)")
    end
    return fhp, fhp == FHP_NO_HEADER and "none" or fhp == FHP_IDLE_ONLY and "idle" or tostring(fhp)
end

-- "N packet(s)", and how many of them were reassembled
local function packets_text(handed, reassembled)
    local text = string.format("%d packet%s", handed, handed == 1 and "" or "s")
    if reassembled > 0 then
        text = text .. string.format(" (%d reassembled)", reassembled)
    end
    return text
end

-- the 4-octet OCF at stop, shown as a CLCW; returns summary with the CLCW's N(R)
local function add_ocf(t, tvb, pinfo, stop, f_ocf, summary)
    local ocf_t = t:add(f_ocf, tvb(stop, 4))
    dissect_clcw(tvb(stop, 4):tvb(), pinfo, ocf_t)
    local word = tvb(stop, 4):uint()
    if band(word, 0x80000000) == 0 then
        summary = summary .. string.format(", CLCW N(R) %d", band(word, 0xFF))
    end
    return summary
end

-- the end of a frame: its FECF checked when it has one, the summary on the frame's line
local function finish_frame(t, tvb, flen, fecf, f_fecf, f_status, f_calc, summary)
    if fecf and not add_fecf(t, tvb, flen, f_fecf, f_status, f_calc) then
        summary = summary .. " [FECF bad]"
    end
    t:append_text(", " .. summary)
    return summary
end

-- ---------------------------------------------------------------------------
-- SDLS (CCSDS 355.0-B-2): the security header and trailer
-- ---------------------------------------------------------------------------
-- An SA, as a scenario file or the preference gives it: { spi, service (nil: not
-- given), iv_len, sn_len, pad_len, mac_len }. The preference is read again when it
-- changes.
local pref_sas = { text = nil, sas = nil, problems = {}, vcids_text = nil, vcids = nil }

local function parse_spi_lengths(text)
    local sas, problems, count = {}, {}, 0
    for entry in text:gmatch("[^,%s]+") do
        local parts = {}
        for part in (entry .. ":"):gmatch("([^:]*):") do
            parts[#parts + 1] = part
        end
        local values, ok = {}, #parts == 5 or #parts == 6
        for i = 1, 5 do
            values[i] = ok and tonumber(parts[i]) or nil
            if values[i] == nil or values[i] ~= math.floor(values[i]) or values[i] < 0
                or (i > 1 and values[i] > SDLS_MAX_FIELD) then
                ok = false
            end
        end
        local service = parts[6]
        if ok and (values[1] < 1 or values[1] > 0xFFFE
            or (service ~= nil and not SDLS_SERVICES[service])) then
            ok = false
        end
        if ok then
            sas[values[1]] = { spi = values[1], iv_len = values[2], sn_len = values[3],
                pad_len = values[4], mac_len = values[5], service = service }
            count = count + 1
        else
            problems[#problems + 1] = entry
        end
    end
    return count > 0 and sas or nil, problems
end

local function parse_vcids(text)
    local vcids, any = {}, false
    for v in text:gmatch("%d+") do
        vcids[tonumber(v)] = true
        any = true
    end
    return any and vcids or nil
end

-- The SAs of the preferences: (SPI -> SA or nil, VCIDs set or nil, entries refused)
local function preference_sas()
    local text, vtext = p_sdls.prefs.spi_lengths or "", p_sdls.prefs.vcids or ""
    if pref_sas.text ~= text then
        pref_sas.text = text
        pref_sas.sas, pref_sas.problems = parse_spi_lengths(text)
    end
    if pref_sas.vcids_text ~= vtext then
        pref_sas.vcids_text, pref_sas.vcids = vtext, parse_vcids(vtext)
    end
    return pref_sas.sas, pref_sas.vcids, pref_sas.problems
end

-- The SAs that protect a frame of kind ("tc", "tm", "aos") on virtual channel vcid:
-- (SPI -> SA, where they come from, entries of the preference refused), or nil when
-- the frame is not under SDLS. A scenario that turns SDLS on says it for its links;
-- otherwise the preference does.
local function frame_sas(pinfo, kind, vcid)
    local sc = scenario_of(pinfo)
    local sdls = sc and sc.sdls
    if sdls ~= nil and sdls.enabled then
        local on = sdls[FRAME_LINKS[kind]]
        if on == nil or (on.vcid ~= nil and on.vcid ~= vcid) then
            return nil
        end
        return on.by_spi, "scenario " .. sc.name, nil
    end
    local sas, vcids, problems = preference_sas()
    problems = (#problems > 0) and problems or nil
    if sas == nil or (vcids ~= nil and not vcids[vcid]) then
        return nil, nil, problems
    end
    return sas, "preference linkstack.sdls.spi_lengths", problems
end

local function spi_list(sas)
    local spis = {}
    for spi in pairs(sas) do
        spis[#spis + 1] = spi
    end
    table.sort(spis)
    return #spis > 0 and table.concat(spis, ", ") or "none"
end

-- The security header of a frame (tvb) at offset at, under t, whose trailer ends at
-- stop (where the OCF, else the FECF, begins). Returns nil when no SA protects the
-- frame (kind, vcid: see frame_sas); else { data_at, data_end (the MAC's offset),
-- readable (the data is in the clear: packets may be read from it), mac_len, summary }.
-- Data that is not readable is shown here; the caller shows readable data, then the
-- trailer (add_security_trailer).
local function dissect_security(tvb, pinfo, t, kind, vcid, at, stop)
    local sas, from, problems = frame_sas(pinfo, kind, vcid)
    if problems ~= nil then
        t:add_proto_expert_info(e.sdls_pref, "preference linkstack.sdls.spi_lengths: not "
            .. "SPI:IV:SN:PAD:MAC[:SERVICE] (SERVICE clear, auth, enc or aead; lengths 0-64): "
            .. table.concat(problems, ", "))
    end
    if sas == nil then
        return nil
    end
    local unread = { data_at = at, data_end = stop, readable = false, mac_len = 0 }
    if stop - at < SPI_LEN then
        t:add_proto_expert_info(e.sdls_short, string.format(
            "%d octets left for the security header: no room for an SPI", math.max(stop - at, 0)))
        unread.data_at, unread.summary = stop, ", SDLS: no room for a security header"
        return unread
    end
    local spi = tvb(at, SPI_LEN):uint()
    local sa = sas[spi]
    local sh
    if sa == nil then
        sh = t:add(p_sdls, tvb(at, SPI_LEN))
        sh:set_text(string.format("Security Header: SPI %d (no SA of this link)", spi))
        sh:add(f.sdls_spi, tvb(at, SPI_LEN)):add_proto_expert_info(e.spi_unknown, string.format(
            "SPI %d is not one of this %s frame's SAs (%s: SPI %s): the rest is not read", spi,
            kind:upper(), from, spi_list(sas)))
        if stop > at + SPI_LEN then
            t:add(f.sdls_unread, tvb(at + SPI_LEN, stop - at - SPI_LEN))
                :append_text(string.format(" (%d octets, SPI %d unknown)", stop - at - SPI_LEN,
                    spi))
        end
        unread.data_at, unread.summary = at + SPI_LEN, string.format(", SDLS SPI %d unknown", spi)
        return unread
    end
    local header_len = SPI_LEN + sa.iv_len + sa.sn_len + sa.pad_len
    local mac_at = stop - sa.mac_len
    if mac_at < at + header_len then
        sh = t:add(p_sdls, tvb(at, SPI_LEN))
        sh:set_text(string.format("Security Header: SPI %d", spi))
        sh:add(f.sdls_spi, tvb(at, SPI_LEN))
        sh:add_proto_expert_info(e.sdls_short, string.format(
            "%d octets left for SPI %d's %d-octet security header and %d-octet MAC",
            stop - at, spi, header_len, sa.mac_len))
        unread.summary = string.format(", SDLS SPI %d [too short]", spi)
        return unread
    end
    sh = t:add(p_sdls, tvb(at, header_len))
    sh:set_text(string.format("Security Header: SPI %d (%s)", spi, sa.service or "service not given"))
    sh:add(f.sdls_spi, tvb(at, SPI_LEN))
    local pos = at + SPI_LEN
    for _, name in ipairs({ "iv", "sn", "pad" }) do
        local len = sa[name .. "_len"]
        if len > 0 then
            sh:add(f["sdls_" .. name], tvb(pos, len))
        end
        pos = pos + len
    end
    sh:add(f.sdls_service, tvb(at, SPI_LEN), sa.service or "not given"):set_generated()
    sh:add(f.sdls_sa_from, tvb(at, SPI_LEN), from):set_generated()
    local out = { data_at = pos, data_end = mac_at, mac_len = sa.mac_len,
        readable = SDLS_READABLE[sa.service] == true }
    local data_len = mac_at - pos
    out.summary = string.format(", SDLS SPI %d", spi)
    if sa.service == "enc" or sa.service == "aead" then
        t:add(f.sdls_encrypted, tvb(pos, data_len)):set_text(string.format(
            "Encrypted data (%d octets): not decrypted (linkstack.lua has no key and no "
                .. "cipher; `linkstack replay --keys KEYFILE` shows the plain frames)", data_len))
        out.summary = out.summary .. string.format(" encrypted (%d octets)", data_len)
    elseif not out.readable then
        t:add(f.sdls_unread, tvb(pos, data_len)):append_text(string.format(
            " (%d octets; the SA's service is not given: clear or auth data would be read)",
            data_len))
        out.summary = out.summary .. string.format(" (%d octets not read)", data_len)
    end
    return out
end

-- the trailer of a frame that dissect_security read (sec): its MAC
local function add_security_trailer(t, tvb, sec)
    if sec.mac_len > 0 then
        local tr = t:add(p_sdls, tvb(sec.data_end, sec.mac_len))
        tr:set_text("Security Trailer")
        tr:add(f.sdls_mac, tvb(sec.data_end, sec.mac_len))
    end
end

-- ---------------------------------------------------------------------------
-- TM Transfer Frame
-- ---------------------------------------------------------------------------
local function dissect_tm(tvb, pinfo, tree)
    local n = tvb:len()
    local t = tree:add(p_tm, tvb())
    local fecf = p_tm.prefs.fecf
    if n < 6 + (fecf and 2 or 0) + 1 then
        t:add_proto_expert_info(e.malformed, "too short for a TM frame")
        return "TM (too short)"
    end
    local h = tvb(0, 2)
    local w0 = h:uint()
    for _, k in ipairs({ "version", "scid", "vcid", "ocf_flag" }) do
        t:add(f["tm_" .. k], h)
    end
    t:add(f.tm_mc_count, tvb(2, 1))
    t:add(f.tm_vc_count, tvb(3, 1))
    local dfs_r = tvb(4, 2)
    local dfs = dfs_r:uint()
    local dfs_t = t:add(dfs_r, "Data field status")
    for _, k in ipairs({ "sec_flag", "sync_flag", "order_flag", "seg_len_id" }) do
        dfs_t:add(f["tm_" .. k], dfs_r)
    end
    local fhp, fhp_text = add_fhp(dfs_t, f.tm_fhp, dfs_r)
    local scid, vcid = band(rshift(w0, 4), 0x3FF), band(rshift(w0, 1), 7)
    local scid_text = add_spacecraft(t, pinfo, f.tm_spacecraft, h, scid)
    local mc, vc = tvb(2, 1):uint(), tvb(3, 1):uint()
    local summary = string.format("TM SCID %s VC %d MC %d VC# %d FHP %s", scid_text, vcid, mc,
        vc, fhp_text)
    if rshift(w0, 14) ~= 0 then
        t:add_proto_expert_info(e.malformed, "TM frame version must be 00")
        summary = summary .. " [bad version]"
    end
    local stop = n - (fecf and 2 or 0)
    local has_ocf = band(w0, 1) == 1
    if has_ocf then
        stop = stop - 4
    end
    local pos = 6
    if band(dfs, 0x8000) ~= 0 and pos < stop then
        local sec_len = band(tvb(pos, 1):uint(), 0x3F) + 1
        local sec_t = t:add(tvb(pos, math.min(sec_len, stop - pos)), "Secondary header")
        sec_t:add(f.tm_sec_version, tvb(pos, 1))
        sec_t:add(f.tm_sec_length, tvb(pos, 1))
        if sec_len > 1 and pos + sec_len <= stop then
            sec_t:add(f.tm_sec_data, tvb(pos + 1, sec_len - 1))
        end
        pos = pos + sec_len
    end
    -- SDLS: the security header after the headers, the MAC before the OCF
    local sec = dissect_security(tvb, pinfo, t, "tm", vcid, pos, stop)
    local data_end = stop
    if sec ~= nil then
        pos, data_end = sec.data_at, sec.data_end
        summary = summary .. sec.summary
    end
    if sec ~= nil and not sec.readable then
        -- shown by dissect_security; the VC's next frame count says a packet is cut
    elseif pos < data_end then
        local data_t = t:add(f.tm_data, tvb(pos, data_end - pos))
        if band(dfs, 0x4000) == 0 then
            local key = stream_key(pinfo, "tm", scid, vcid)
            local handed, reassembled = packet_zone(tvb, pos, data_end - pos, fhp, pinfo, data_t,
                key, vc, 256)
            summary = summary .. ", " .. packets_text(handed, reassembled)
        end
    else
        t:add_proto_expert_info(e.malformed, "no data field")
    end
    if sec ~= nil then
        add_security_trailer(t, tvb, sec)
    end
    if has_ocf and stop >= 6 then
        summary = add_ocf(t, tvb, pinfo, stop, f.tm_ocf, summary)
    end
    return finish_frame(t, tvb, n, fecf, f.tm_fecf, f.tm_fecf_status, f.tm_fecf_calc, summary)
end

-- ---------------------------------------------------------------------------
-- AOS Transfer Frame
-- ---------------------------------------------------------------------------
local function dissect_aos(tvb, pinfo, tree)
    local n = tvb:len()
    local t = tree:add(p_aos, tvb())
    local fecf, ocf, iz = p_aos.prefs.fecf, p_aos.prefs.ocf, p_aos.prefs.insert_zone
    local stop = n - (fecf and 2 or 0) - (ocf and 4 or 0)
    if stop < 6 + iz then
        t:add_proto_expert_info(e.malformed, "too short for an AOS frame")
        return "AOS (too short)"
    end
    local h = tvb(0, 2)
    local w0 = h:uint()
    for _, k in ipairs({ "version", "scid", "vcid" }) do
        t:add(f["aos_" .. k], h)
    end
    t:add(f.aos_vc_count, tvb(2, 3))
    local sig_r = tvb(5, 1)
    local sig = sig_r:uint()
    local sig_t = t:add(sig_r, "Signaling field")
    for _, k in ipairs({ "replay", "usage", "sig_spare", "cycle" }) do
        sig_t:add(f["aos_" .. k], sig_r)
    end
    local count = tvb(2, 3):uint()
    local usage = band(sig, 0x40) ~= 0
    local full = count
    if usage then
        full = band(sig, 0x0F) * 16777216 + count
        t:add(f.aos_full_count, tvb(2, 4), full):set_generated()
    end
    local scid, vcid = band(rshift(w0, 6), 0xFF), band(w0, 0x3F)
    local scid_text = add_spacecraft(t, pinfo, f.aos_spacecraft, h, scid)
    local summary = string.format("AOS SCID %s VC %d VC# %d", scid_text, vcid, full)
    if rshift(w0, 14) ~= 1 then
        t:add_proto_expert_info(e.malformed, "AOS frame version must be 01")
        summary = summary .. " [bad version]"
    end
    if band(sig, 0x80) ~= 0 then
        summary = summary .. " replay"
    end
    local pos = 6
    if iz > 0 then
        t:add(f.aos_insert, tvb(pos, iz))
        pos = pos + iz
    end
    -- SDLS: the security header after the insert zone, the MAC before the OCF
    local sec = dissect_security(tvb, pinfo, t, "aos", vcid, pos, stop)
    local data_end = stop
    if sec ~= nil then
        pos, data_end = sec.data_at, sec.data_end
    end
    if vcid == 63 then
        summary = summary .. " idle"
    end
    if sec ~= nil then
        summary = summary .. sec.summary
    end
    if sec ~= nil and not sec.readable then
        -- shown by dissect_security; the VC's next frame count says a packet is cut
    elseif vcid == 63 then
        t:add(f.aos_data, tvb(pos, data_end - pos)):append_text(" (idle)")
    else
        local data_t = t:add(f.aos_data, tvb(pos, data_end - pos))
        if data_end - pos >= 3 then
            local head = tvb(pos, 2)
            data_t:add(f.aos_mpdu_spare, head)
            local fhp, fhp_text = add_fhp(data_t, f.aos_fhp, head)
            local key = stream_key(pinfo, "aos", scid, vcid)
            local modulo = usage and 268435456 or 16777216
            local handed, reassembled = packet_zone(tvb, pos + 2, data_end - pos - 2, fhp, pinfo,
                data_t, key, full, modulo)
            summary = summary .. " FHP " .. fhp_text .. ", " .. packets_text(handed, reassembled)
        end
    end
    if sec ~= nil then
        add_security_trailer(t, tvb, sec)
    end
    if ocf then
        summary = add_ocf(t, tvb, pinfo, stop, f.aos_ocf, summary)
    end
    return finish_frame(t, tvb, n, fecf, f.aos_fecf, f.aos_fecf_status, f.aos_fecf_calc, summary)
end

-- ---------------------------------------------------------------------------
-- TC Transfer Frame
-- ---------------------------------------------------------------------------
-- the TC reassembly state under key (a VC's or a MAP's), made empty the first time
local function tc_state_at(key)
    local st = tc_state[key]
    if st == nil then
        st = {}
        tc_state[key] = st
    end
    return st
end

local function dissect_tc(tvb, pinfo, tree)
    local n = tvb:len()
    local fecf = p_tc.prefs.fecf
    local t = tree:add(p_tc, tvb())
    if n < 5 + 1 + (fecf and 2 or 0) then
        t:add_proto_expert_info(e.malformed, "too short for a TC frame")
        return "TC (too short)"
    end
    local w0, w1 = tvb(0, 2):uint(), tvb(2, 2):uint()
    local flen = band(w1, 0x3FF) + 1
    for _, k in ipairs({ "version", "bypass", "cc", "spare", "scid" }) do
        t:add(f["tc_" .. k], tvb(0, 2))
    end
    t:add(f.tc_vcid, tvb(2, 2))
    local len_item = t:add(f.tc_length, tvb(2, 2))
    len_item:append_text(string.format(" (%d octets)", flen))
    local ns = tvb(4, 1):uint()
    t:add(f.tc_ns, tvb(4, 1))
    local kind = band(rshift(w0, 12), 3)
    local type_name = TC_TYPES[kind]
    t:add(f.tc_type, tvb(0, 1), type_name):set_generated()
    local scid, vcid = band(w0, 0x3FF), rshift(w1, 10)
    local scid_text = add_spacecraft(t, pinfo, f.tc_spacecraft, tvb(0, 2), scid)
    local summary = string.format("TC %s SCID %s VC %d N(S) %d", type_name, scid_text, vcid, ns)
    if rshift(w0, 14) ~= 0 then
        t:add_proto_expert_info(e.malformed, "TC frame version must be 00")
        summary = summary .. " [bad version]"
    end
    if kind == 1 then
        t:add_proto_expert_info(e.malformed, "bypass 0 with control command 1 is not a frame type")
    end
    if flen > n then
        len_item:add_proto_expert_info(e.malformed,
            string.format("the length field says %d octets, %d are here", flen, n))
        return summary .. " [truncated]"
    end
    if flen < n then
        t:add(f.tc_trailing, tvb(flen, n - flen))
    end
    local stop = flen - (fecf and 2 or 0)
    local pos = 5
    if stop <= pos then
        len_item:add_proto_expert_info(e.malformed, string.format(
            "the length field says %d octets, less than a header, a data octet and the FECF",
            flen))
        return summary .. " [bad length]"
    end
    local vc_key = stream_key(pinfo, "tc", scid, vcid)
    local sec = nil -- SDLS: the security header after the segment header (none in Type-BC)
    if kind == 3 then -- a control command
        sec = dissect_security(tvb, pinfo, t, "tc", vcid, pos, stop)
        local cc_end = stop
        if sec ~= nil then
            pos, cc_end = sec.data_at, sec.data_end
            summary = summary .. sec.summary
        end
        if sec ~= nil and not sec.readable then
            if not pinfo.visited then -- perhaps a Set V(R): what it set is not known
                tc_state_at(vc_key).vr = nil
            end
        elseif cc_end <= pos then
            t:add_proto_expert_info(e.malformed, "no control command")
            summary = summary .. " [bad control command]"
        else
            local cc_r = tvb(pos, cc_end - pos)
            local code = tvb(pos, 1):uint()
            local cc_t = t:add(f.tc_cc_code, tvb(pos, 1))
            if code == 0x82 and cc_end - pos == 3 then
                cc_t:add(f.tc_cc_vr, tvb(pos + 2, 1))
                local vr = tvb(pos + 2, 1):uint()
                summary = summary .. string.format(" Set V(R) %d", vr)
                if not pinfo.visited then
                    tc_state_at(vc_key).vr = vr
                end
            elseif code == 0x00 and cc_end - pos == 1 then
                summary = summary .. " Unlock"
            else
                cc_t:add_proto_expert_info(e.malformed,
                    "not a control command: Unlock is 00, Set V(R) is 82 00 V(R)")
                t:add(f.tc_data, cc_r)
                summary = summary .. " [bad control command]"
            end
        end
    elseif stop > pos then
        local seq_flags, map_id = 3, 0
        if p_tc.prefs.segment_header then
            local sh = tvb(pos, 1)
            t:add(f.tc_seq_flags, sh)
            t:add(f.tc_map_id, sh)
            seq_flags, map_id = rshift(sh:uint(), 6), band(sh:uint(), 0x3F)
            summary = summary .. string.format(" MAP %d %s", map_id, SEQ_FLAGS[seq_flags])
            pos = pos + 1
        end
        sec = dissect_security(tvb, pinfo, t, "tc", vcid, pos, stop)
        local data_end = stop
        if sec ~= nil then
            pos, data_end = sec.data_at, sec.data_end
            summary = summary .. sec.summary
        end
        local readable = sec == nil or sec.readable
        if data_end > pos or not readable then
            local map_key = vc_key .. "|" .. map_id
            local done_key = tostring(pinfo.number) .. "|" .. map_key
            if not pinfo.visited then
                local vst = tc_state_at(vc_key)
                local accepted = true
                if kind == 0 then -- Type-AD: only the next N(S) in sequence counts
                    accepted = (vst.vr == nil or vst.vr == ns)
                    if accepted then
                        vst.vr = (ns + 1) % 256
                    end
                end
                local mst = tc_state_at(map_key)
                local done = { accepted = accepted, packets = {} }
                if accepted and not readable then
                    mst.pending = nil -- encrypted: a packet it continued is lost here
                elseif accepted then
                    local data = tvb:raw(pos, data_end - pos)
                    if seq_flags == 3 then
                        mst.pending = nil
                    elseif seq_flags == 1 then
                        mst.pending = data
                    elseif mst.pending ~= nil then
                        mst.pending = mst.pending .. data
                        if seq_flags == 2 then
                            done.packets = split_packets(mst.pending)
                            mst.pending = nil
                        end
                    end
                end
                if not accepted or #done.packets > 0 then
                    tc_done[done_key] = done
                end
            end
            local done = tc_done[done_key] or { accepted = true, packets = {} }
            local data_t = t
            if readable then
                data_t = t:add(f.tc_data, tvb(pos, data_end - pos))
            end
            data_t:add(f.tc_accepted, tvb(4, 1), done.accepted):set_generated()
            if not done.accepted then
                data_t:add_proto_expert_info(e.sequence,
                    "N(S) out of sequence (a retransmission, or frames missing before it): "
                    .. "not taken into reassembly")
            end
            local handed = 0 -- encrypted, or not known to be clear: no packets read
            if readable and seq_flags == 3 then
                local ppos = pos
                while data_end - ppos >= 7 do
                    local plen = 7 + tvb(ppos + 4, 2):uint()
                    if plen > data_end - ppos then
                        break
                    end
                    call_ccsds(tvb(ppos, plen):tvb(), pinfo, data_t)
                    handed = handed + 1
                    ppos = ppos + plen
                end
                if ppos < data_end then
                    data_t:add(f.zone_junk, tvb(ppos, data_end - ppos))
                end
            elseif readable then
                for _, s in ipairs(done.packets) do
                    packet_from_string(s, pinfo, data_t, "Reassembled Space Packet")
                    handed = handed + 1
                end
            end
            if handed > 0 then
                summary = summary .. ", " .. packets_text(handed, 0)
            end
        end
    end
    if sec ~= nil then
        add_security_trailer(t, tvb, sec)
    end
    return finish_frame(t, tvb, flen, fecf, f.tc_fecf, f.tc_fecf_status, f.tc_fecf_calc, summary)
end

-- ---------------------------------------------------------------------------
-- CLTU
-- ---------------------------------------------------------------------------
-- coding: the scenario's settings of the link ({ randomized = bool }), or nil: preferences
-- ---------------------------------------------------------------------------
-- USLP Transfer Frame (CCSDS 732.1-B-2)
-- ---------------------------------------------------------------------------
local USLP_VERSION = 0xC
local USLP_POINTER_NONE = 0xFFFF
local USLP_UPID_IDLE = 31
local USLP_UPID_COP1 = 1
local USLP_SEGMENTS = { [4] = "first", [5] = "continuing", [6] = "last" }

local function is_uslp(first_octet)
    return rshift(first_octet, 4) == USLP_VERSION
end

-- the SDLS link kind of a USLP frame on the frame port: an uplink's frame names its
-- destination; a frame to a satellite (10.2.0.0/16) is a laser link's, else a downlink's
local function uslp_kind_of(pinfo, dest)
    if dest then
        return "tc"
    end
    local dst = tostring(pinfo.dst)
    return (dst:sub(1, 5) == "10.2.") and "aos" or "tm"
end

-- An uplink frame's data zone (rules 100 first, 101 continuing, 110 last, 111 whole)
-- joined to its MAP's segments on the first pass: a Type-AD frame counts only when its
-- N(S) is the next (a retransmission does not); returns { accepted, packets completed }
local USLP_SEQ_FLAGS = { [4] = 1, [5] = 0, [6] = 2, [7] = 3 } -- as TC's sequence flags
local function uslp_uplink_segments(pinfo, tvb, zone, zlen, scid, vcid, map_id, rule, bypass,
                                    count, count_len)
    local vc_key = stream_key(pinfo, "uslp-up", scid, vcid)
    local map_key = vc_key .. "|" .. map_id
    local done_key = tostring(pinfo.number) .. "|" .. map_key
    if not pinfo.visited then
        local accepted = true
        if bypass == 0 and count_len > 0 then
            local vst = tc_state_at(vc_key)
            accepted = (vst.vr == nil or vst.vr == count)
            if accepted then
                vst.vr = (count + 1) % (2 ^ (8 * count_len))
            end
        end
        local done = { accepted = accepted, packets = {} }
        if accepted then
            local mst = tc_state_at(map_key)
            local flags = USLP_SEQ_FLAGS[rule]
            local data = tvb:raw(zone, zlen)
            if flags == 3 then
                mst.pending = nil
            elseif flags == 1 then
                mst.pending = data
            elseif mst.pending ~= nil then
                mst.pending = mst.pending .. data
                if flags == 2 then
                    done.packets = split_packets(mst.pending)
                    mst.pending = nil
                end
            end
        end
        if not accepted or #done.packets > 0 then
            tc_done[done_key] = done
        end
    end
    return tc_done[done_key] or { accepted = true, packets = {} }
end

-- kind: whose SAs protect it ("tc" up, "tm" down, "aos" laser), as dissect_security reads
local function dissect_uslp(tvb, pinfo, tree, kind)
    local n = tvb:len()
    local t = tree:add(p_uslp, tvb())
    local fecf, iz = p_uslp.prefs.fecf, p_uslp.prefs.insert_zone
    if n < 4 then
        t:add_proto_expert_info(e.malformed, "too short for a USLP frame")
        return "USLP (too short)"
    end
    local id = tvb(0, 4)
    local w = id:uint()
    for _, k in ipairs({ "version", "scid", "dest", "vcid", "map_id", "truncated" }) do
        t:add(f["uslp_" .. k], id)
    end
    local scid = band(rshift(w, 12), 0xFFFF)
    local dest = band(w, 0x800) ~= 0
    local vcid, map_id = band(rshift(w, 5), 0x3F), band(rshift(w, 1), 0xF)
    kind = kind or uslp_kind_of(pinfo, dest)
    local scid_text = add_spacecraft(t, pinfo, f.uslp_spacecraft, id, scid)
    local summary = string.format("USLP SCID %s VC %d MAP %d", scid_text, vcid, map_id)
    if not is_uslp(tvb(0, 1):uint()) then
        t:add_proto_expert_info(e.malformed, "USLP frame version must be 1100")
        summary = summary .. " [bad version]"
    end
    local truncated = band(w, 1) == 1
    local pos, count, count_len, has_ocf = 4, 0, 0, false
    local bypass, cmd = 0, 0
    local stop = n - (fecf and 2 or 0)
    if truncated then
        summary = summary .. " truncated"
    else
        if n < 7 then
            t:add_proto_expert_info(e.malformed, "too short for a USLP primary header")
            return summary .. " (too short)"
        end
        local len_item = t:add(f.uslp_length, tvb(4, 2))
        local length = tvb(4, 2):uint()
        if length + 1 ~= n then
            len_item:add_proto_expert_info(e.malformed, string.format(
                "the frame length field says %d octets, the frame has %d", length + 1, n))
            summary = summary .. " [bad length]"
        end
        local flags = tvb(6, 1)
        for _, k in ipairs({ "bypass", "cmd", "spare", "ocf_flag", "count_len" }) do
            t:add(f["uslp_" .. k], flags)
        end
        local fv = flags:uint()
        bypass, cmd = rshift(fv, 7), band(rshift(fv, 6), 1)
        if band(fv, 0x30) ~= 0 then
            t:add_proto_expert_info(e.malformed, "USLP spare bits must be 00")
        end
        has_ocf = band(fv, 0x08) ~= 0
        count_len = band(fv, 0x07)
        pos = 7
        if count_len > 0 then
            if 7 + count_len > n then
                t:add_proto_expert_info(e.malformed, "too short for its VC frame count")
                return summary .. " (too short)"
            end
            for i = 0, count_len - 1 do
                count = count * 256 + tvb(7 + i, 1):uint()
            end
            local c_item
            if count_len <= 4 then
                c_item = t:add(f.uslp_vc_count, tvb(7, count_len), count)
            else
                c_item = t:add(tvb(7, count_len), string.format("VC frame count: %.0f", count))
            end
            if dest then -- COP-1 over USLP: the count is N(S)
                c_item:add(f.uslp_ns, tvb(7, count_len), count):set_generated()
            end
            summary = summary .. string.format(" VC# %.0f", count)
        end
        pos = 7 + count_len
        if dest then
            local ty = (bypass == 0 and cmd == 0) and "AD" or (bypass == 1 and cmd == 0) and "BD"
                or (bypass == 1 and cmd == 1) and "BC" or "invalid (bypass 0, command 1)"
            t:add(f.uslp_type, tvb(6, 1), ty):set_generated()
            summary = summary .. " " .. ty
        end
    end
    if has_ocf then
        stop = stop - 4
    end
    if iz > 0 and pos + iz <= stop then
        t:add(f.uslp_insert, tvb(pos, iz))
        pos = pos + iz
    end
    local sec = dissect_security(tvb, pinfo, t, kind, vcid, pos, stop)
    local data_end = stop
    if sec ~= nil then
        pos, data_end = sec.data_at, sec.data_end
        summary = summary .. sec.summary
    end
    if sec ~= nil and not sec.readable then
        -- shown by dissect_security
    elseif pos < data_end then
        local head = tvb(pos, 1)
        local rule, upid = rshift(head:uint(), 5), band(head:uint(), 0x1F)
        local tfdf = t:add(head, "Transfer frame data field header")
        tfdf:add(f.uslp_rule, head)
        tfdf:add(f.uslp_upid, head)
        local zone = pos + 1
        local pointer = nil
        if not truncated and rule <= 2 then
            if zone + 2 > data_end then
                t:add_proto_expert_info(e.malformed, "no room for the first header pointer")
                return finish_frame(t, tvb, n, fecf, f.uslp_fecf, f.uslp_fecf_status,
                    f.uslp_fecf_calc, summary)
            end
            pointer = tvb(zone, 2):uint()
            local p_item = tfdf:add(f.uslp_pointer, tvb(zone, 2))
            if pointer == USLP_POINTER_NONE then
                p_item:append_text(" (no packet header starts in this frame)")
            end
            zone = zone + 2
        end
        local zlen = data_end - zone
        summary = summary .. string.format(" rule %d%d%d", rshift(rule, 2), band(rshift(rule, 1), 1),
            band(rule, 1))
        if zlen > 0 then
            local data_t = t:add(f.uslp_data, tvb(zone, zlen))
            if upid == USLP_UPID_IDLE then
                data_t:add(f.zone_idle, tvb(zone, zlen))
                summary = summary .. ", idle"
            elseif upid == USLP_UPID_COP1 then
                data_t:append_text(" (a COP-1 control command)")
                summary = summary .. ", COP-1 control command"
            elseif upid ~= 0 then
                summary = summary .. string.format(", UPID %d", upid)
            elseif rule == 0 and pointer ~= nil and zlen < FHP_IDLE_ONLY then
                local fhp = (pointer == USLP_POINTER_NONE) and FHP_NO_HEADER or pointer
                if fhp >= zlen and fhp ~= FHP_NO_HEADER then
                    t:add_proto_expert_info(e.malformed, "first header pointer past the zone")
                    fhp = FHP_NO_HEADER
                end
                local key = stream_key(pinfo, "uslp", scid, vcid, map_id)
                local modulo = 2 ^ (8 * count_len)
                local handed, reassembled = packet_zone(tvb, zone, zlen, fhp, pinfo, data_t, key,
                    count % modulo, modulo)
                summary = summary .. ", " .. packets_text(handed, reassembled)
            elseif rule >= 4 then
                -- an uplink's MAP: segments joined in N(S) order, as FARM-1 takes them
                local done = { accepted = true, packets = {} }
                if dest then
                    done = uslp_uplink_segments(pinfo, tvb, zone, zlen, scid, vcid, map_id, rule,
                        bypass, count, count_len)
                    data_t:add(f.uslp_in_sequence, tvb(6, 1), done.accepted):set_generated()
                    if not done.accepted then
                        data_t:add_proto_expert_info(e.sequence,
                            "N(S) out of sequence (a retransmission, or frames missing before "
                            .. "it): not taken into reassembly")
                    end
                end
                if rule == 7 then
                    local packets, rest = split_packets(tvb:raw(zone, zlen))
                    for i, ps in ipairs(packets) do
                        packet_from_string(ps, pinfo, data_t, "Space Packet " .. i)
                    end
                    if #rest > 0 then
                        data_t:add(f.zone_junk, tvb(data_end - #rest, #rest))
                    end
                    summary = summary .. ", " .. packets_text(#packets, 0)
                else
                    data_t:add(f.uslp_segment, tvb(zone, zlen)):append_text(" (" ..
                        USLP_SEGMENTS[rule] .. ")")
                    summary = summary .. ", " .. USLP_SEGMENTS[rule] .. " segment"
                    for _, ps in ipairs(done.packets) do
                        packet_from_string(ps, pinfo, data_t, "Reassembled Space Packet")
                    end
                    if #done.packets > 0 then
                        summary = summary .. ", " .. packets_text(#done.packets, #done.packets)
                    end
                end
            end
        end
    elseif not truncated then
        t:add_proto_expert_info(e.malformed, "no data field")
    end
    if sec ~= nil then
        add_security_trailer(t, tvb, sec)
    end
    if has_ocf and stop >= pos then
        summary = add_ocf(t, tvb, pinfo, stop, f.uslp_ocf, summary)
    end
    return finish_frame(t, tvb, n, fecf, f.uslp_fecf, f.uslp_fecf_status, f.uslp_fecf_calc,
        summary)
end

local function dissect_cltu(tvb, pinfo, tree, coding)
    local n = tvb:len()
    local t = tree:add(p_cltu, tvb())
    if n < 2 then
        t:add_proto_expert_info(e.malformed, "too short for a CLTU")
        return "CLTU (too short)"
    end
    local start = tvb(0, 2)
    local s_item = t:add(f.cltu_start, start)
    if start:uint() ~= 0xEB90 then
        s_item:add_proto_expert_info(e.start)
    end
    local raw = tvb:raw()
    -- the codeblocks run up to the tail sequence, or to the last whole 8 octets
    local count = 0
    while n - (2 + 8 * count) >= 8 and raw:sub(3 + 8 * count, 10 + 8 * count) ~= TAIL_SEQUENCE do
        count = count + 1
    end
    local cbs = t
    if count > 0 then
        cbs = t:add(tvb(2, 8 * count), string.format("Codeblocks (%d)", count))
    end
    local info = {}
    local blocks, wrong, refused, corrected = 0, 0, 0, 0
    local pos = 2
    local tail_found = false
    local first_refused = nil
    while n - pos >= 8 do
        if raw:sub(pos + 1, pos + 8) == TAIL_SEQUENCE then
            t:add(f.cltu_tail, tvb(pos, 8))
            tail_found = true
            pos = pos + 8
            break
        end
        blocks = blocks + 1
        local b = { raw:byte(pos + 1, pos + 8) }
        local syn, filler = bch_syndrome(b)
        local r = 0
        for j = 1, 7 do
            r = BCH7[bxor(r, b[j])]
        end
        local expected = band(bxor(r, 0xFF), 0xFE)
        local status = 0
        local fix = nil
        if syn == 0 and filler == 0 then
            status = 0
        elseif syn == 0 and filler == 1 then
            status = 1
        elseif BCH_SINGLE[syn] ~= nil and filler == 0 then
            status = 1
            fix = BCH_SINGLE[syn]
        else
            status = 2
        end
        local cb = cbs:add(f.cltu_cb, tvb(pos, 8))
        cb:set_text(string.format("Codeblock %d: %s", blocks, BCH_STATUS[status]))
        cb:add(f.cltu_cb_info, tvb(pos, 7))
        cb:add(f.cltu_cb_parity, tvb(pos + 7, 1))
        cb:add(f.cltu_cb_filler, tvb(pos + 7, 1))
        cb:add(f.cltu_cb_expected, tvb(pos + 7, 1), rshift(expected, 1)):set_generated()
        cb:add(f.cltu_cb_syndrome, tvb(pos + 7, 1), syn):set_generated()
        cb:add(f.cltu_cb_ok, tvb(pos + 7, 1), syn == 0):set_generated()
        local st_item = cb:add(f.cltu_cb_status, tvb(pos, 8), status)
        st_item:set_generated()
        if syn ~= 0 then
            wrong = wrong + 1
        end
        if status == 1 then
            corrected = corrected + 1
            st_item:add_proto_expert_info(e.bch_corrected)
        elseif status == 2 then
            refused = refused + 1
            st_item:add_proto_expert_info(e.bch)
            if first_refused == nil then
                first_refused = blocks
            end
        end
        if fix ~= nil and fix[1] <= 7 then
            b[fix[1]] = bxor(b[fix[1]], fix[2])
        end
        for j = 1, 7 do
            info[#info + 1] = b[j]
        end
        pos = pos + 8
    end
    t:add(f.cltu_codeblocks, tvb(2, 0), blocks):set_generated()
    t:add(f.cltu_bch_errors, tvb(2, 0), wrong):set_generated()
    t:add(f.cltu_refused, tvb(2, 0), refused):set_generated()
    if not tail_found then
        t:add_proto_expert_info(e.tail)
    end
    if pos < n then
        t:add(f.cltu_trailing, tvb(pos, n - pos))
    end
    local summary = string.format("CLTU %d codeblock%s", blocks, blocks == 1 and "" or "s")
    if corrected > 0 then
        summary = summary .. string.format(", %d corrected", corrected)
    end
    if refused > 0 then
        summary = summary .. string.format(", %d refused (BCH)", refused)
        t:append_text(string.format(", codeblock %d refused: a receiver stops there; the frame "
            .. "below is shown as received", first_refused))
    end
    if not tail_found then
        summary = summary .. ", no tail"
    end
    if #info == 0 then
        return summary
    end
    local data = octets_to_string(info)
    local randomized = p_cltu.prefs.randomized
    if coding ~= nil and coding.randomized ~= nil then
        randomized = coding.randomized
    end
    if randomized then
        data = derandomize(data, PN_TC)
        t:add(f.cltu_randomized, tvb(2, 0), true):set_generated()
    end
    if #data >= 7 and is_uslp(data:byte(1)) then -- a USLP frame: cut at its length field
        local hi, lo = data:byte(5, 6)
        local ulen = math.min(hi * 256 + lo + 1, #data)
        if ulen < #data then
            t:add(f.cltu_fill, tvb(2, 0), #data - ulen):set_generated()
        end
        local utvb = ByteArray.new(data:sub(1, ulen), true):tvb("USLP frame (from the CLTU)")
        return summary .. ": " .. dissect_uslp(utvb, pinfo, tree, "tc")
    end
    local dtvb = ByteArray.new(data, true):tvb("TC frame (from the CLTU)")
    local flen = #data
    if #data >= 5 then
        local hi, lo = data:byte(3, 4)
        flen = math.min(band(hi * 256 + lo, 0x3FF) + 1, #data)
        if flen < #data then
            t:add(f.cltu_fill, tvb(2, 0), #data - flen):set_generated()
        end
    end
    local inner = dissect_tc(dtvb(0, flen):tvb(), pinfo, tree)
    return summary .. ": " .. inner
end

-- ---------------------------------------------------------------------------
-- CADU (TM or AOS)
-- ---------------------------------------------------------------------------
-- coding: the scenario's settings of the link ({ randomized = bool, rs_check = octets }), or
-- nil: preferences
local function dissect_cadu(tvb, pinfo, tree, is_aos, coding)
    local n = tvb:len()
    local t = tree:add(p_cadu, tvb())
    if n < 5 then
        t:add_proto_expert_info(e.malformed, "too short for a CADU")
        return "CADU (too short)"
    end
    local asm_item = t:add(f.cadu_asm, tvb(0, 4))
    local errors = popcount(bxor(tvb(0, 4):uint(), ASM_VALUE))
    t:add(f.cadu_asm_errors, tvb(0, 4), errors):set_generated()
    if errors > 0 then
        asm_item:add_proto_expert_info(e.asm)
    end
    local cb_len = n - 4
    t:add(f.cadu_codeblock, tvb(4, cb_len))
    local block = tvb:raw(4, cb_len)
    local randomized, check = p_cadu.prefs.randomized, p_cadu.prefs.rs_check
    if coding ~= nil then
        if coding.randomized ~= nil then
            randomized = coding.randomized
        end
        check = coding.rs_check or check
    end
    if randomized then
        block = derandomize(block, PN_TM)
        t:add(f.cadu_randomized, tvb(4, 0), true):set_generated()
    end
    local version = is_aos and 1 or 0
    local has_fecf = (is_aos and p_aos.prefs.fecf) or (not is_aos and p_tm.prefs.fecf)
    if check == RS_AUTO then
        check = nil
        if has_fecf then
            for _, c in ipairs(RS_CANDIDATES) do
                local flen = cb_len - c
                local first = block:byte(1)
                if flen >= 8 and (rshift(first, 6) == version or is_uslp(first))
                    and crc16(block, 1, flen) == 0 then
                    check = c
                    break
                end
            end
        end
        if check == nil then
            check = (cb_len > 160 + 8) and 160 or 0 -- linkstack's default, RS(255,223) x 5
        end
    end
    if check >= cb_len then
        t:add_proto_expert_info(e.malformed, "codeblock shorter than its check symbols")
        return "CADU (too short)"
    end
    local flen = cb_len - check
    t:add(f.cadu_frame_length, tvb(4, 0), flen):set_generated()
    t:add(f.cadu_rs_octets, tvb(4, 0), check):set_generated()
    if check > 0 then
        t:add(f.cadu_rs, tvb(4 + flen, check))
    end
    local ftvb
    if randomized then
        ftvb = ByteArray.new(block:sub(1, flen), true):tvb("Derandomized frame")
    else
        ftvb = tvb(4, flen):tvb()
    end
    local inner
    if flen > 0 and is_uslp(ftvb(0, 1):uint()) then -- frames.protocol = "uslp"
        inner = dissect_uslp(ftvb, pinfo, tree, is_aos and "aos" or "tm")
    elseif is_aos then
        inner = dissect_aos(ftvb, pinfo, tree)
    else
        inner = dissect_tm(ftvb, pinfo, tree)
    end
    local summary = "CADU"
    if errors > 0 then
        summary = summary .. string.format(" (ASM %d bit errors)", errors)
    end
    return summary .. ": " .. inner
end

-- ---------------------------------------------------------------------------
-- registration
-- ---------------------------------------------------------------------------
-- the Info column: the unit's summary, then what its messages said
local function set_columns(pinfo, proto_name, summary)
    pinfo.cols.protocol:set(proto_name)
    if #notes > 0 then
        local shown = {}
        for i = 1, math.min(#notes, 4) do
            shown[i] = notes[i]
        end
        summary = summary .. " | " .. table.concat(shown, "; ")
            .. (#notes > 4 and string.format("; %d more", #notes - 4) or "")
    end
    pinfo.cols.info:set(summary)
end

p_cltu.dissector = function(tvb, pinfo, tree)
    notes = {}
    set_columns(pinfo, "CLTU", dissect_cltu(tvb, pinfo, tree))
    return tvb:len()
end

local function tm_cadu_dissector(tvb, pinfo, tree)
    notes = {}
    set_columns(pinfo, "TM CADU", dissect_cadu(tvb, pinfo, tree, false))
    return tvb:len()
end
local p_tm_cadu = Proto("linkstack.tm_cadu", "linkstack TM CADU (port 47002)")
p_tm_cadu.dissector = tm_cadu_dissector
p_cadu.dissector = tm_cadu_dissector
local p_aos_cadu = Proto("linkstack.aos_cadu", "linkstack AOS CADU (port 47003)")
p_aos_cadu.dissector = function(tvb, pinfo, tree)
    notes = {}
    set_columns(pinfo, "AOS CADU", dissect_cadu(tvb, pinfo, tree, true))
    return tvb:len()
end

p_tc.dissector = function(tvb, pinfo, tree)
    notes = {}
    set_columns(pinfo, "TC", dissect_tc(tvb, pinfo, tree))
    return tvb:len()
end
p_tm.dissector = function(tvb, pinfo, tree)
    notes = {}
    set_columns(pinfo, "TM", dissect_tm(tvb, pinfo, tree))
    return tvb:len()
end
p_aos.dissector = function(tvb, pinfo, tree)
    notes = {}
    set_columns(pinfo, "AOS", dissect_aos(tvb, pinfo, tree))
    return tvb:len()
end
p_uslp.dissector = function(tvb, pinfo, tree)
    notes = {}
    set_columns(pinfo, "USLP", dissect_uslp(tvb, pinfo, tree, nil))
    return tvb:len()
end

-- a Space Packet on its own (port 47020): Wireshark's ccsds, then linkstack's message
p_spp.dissector = function(tvb, pinfo, tree)
    notes = {}
    call_ccsds(tvb, pinfo, tree)
    if #notes > 0 then
        set_columns(pinfo, "CCSDS", string.format("APID 0x%03x", band(tvb(0, 2):uint(), 0x7FF)))
    end
    return tvb:len()
end

-- What a UDP payload is, from its first octets: "cltu", "tm", "aos", or nil. A CLTU
-- starts with EB90 and has whole codeblocks, with the tail sequence at its end or a
-- right parity in its first; a CADU starts with the ASM, and its frame's version says
-- TM (0) or AOS (1), unless the scenario's CADU lengths tell them apart. A second value
-- says a CADU's frame is USLP (version 1100): "tm" then only means "a CADU" (USLP frames
-- are on downlinks and laser links alike; the link, when known, says which).
local function sniff_unit(tvb, sc)
    local n = tvb:len()
    if n >= 18 and tvb(0, 2):uint() == 0xEB90 and (n - 2) % 8 == 0 then
        if tvb:raw(n - 8, 8) == TAIL_SEQUENCE then
            return "cltu"
        end
        local syn, filler = bch_syndrome({ tvb:raw(2, 8):byte(1, 8) })
        if syn == 0 and filler == 0 then
            return "cltu"
        end
        return nil
    end
    if n < 12 or tvb(0, 4):uint() ~= ASM_VALUE then
        return nil
    end
    if sc ~= nil then
        local tm, aos = sc.coding.downlink.cadu_length, sc.coding.isl.cadu_length
        if tm ~= aos and (n == tm or n == aos) then
            return (n == tm) and "tm" or "aos"
        end
    end
    local randomized = p_cadu.prefs.randomized
    if sc ~= nil then
        randomized = sc.coding.downlink.randomized
    end
    local first = tvb(4, 1):uint()
    if randomized then
        first = bxor(first, PN_TM[1])
    end
    if is_uslp(first) then
        return "tm", true
    end
    return (rshift(first, 6) == 1) and "aos" or "tm"
end

local LINK_UNITS = { uplink = "cltu", downlink = "tm", isl = "aos" }
local LINK_CODING = { cltu = "uplink", tm = "downlink", aos = "isl" }
local UNIT_NAMES = { cltu = "CLTU", tm = "TM CADU", aos = "AOS CADU" }

-- the daemons' link header at the start of a payload: the link's index k, or nil
local function link_index_of(tvb)
    if tvb:len() > LINK_HEADER_LEN and tvb(0, 1):uint() == LINK_HEADER_MAGIC then
        return tvb(1, 3):uint()
    end
    return nil
end

-- the legs of a datagram on a scenario's port: to the channel (as sent) or from it
local function legs(l, to_channel)
    if to_channel == nil then
        return l.src, l.dst, nil
    elseif to_channel then
        return l.src, "channel", "to the channel (as sent)"
    end
    return "channel", l.dst, "from the channel (as received)"
end

-- the link a datagram is on: a subtree (over its link header, when it has one: header
-- true), named from the scenario when it knows the link; returns "from -> to: link"
local function add_link(tvb, tree, sc, l, index, to_channel, header)
    local range = header and tvb(0, LINK_HEADER_LEN) or tvb(0, 0)
    local t = tree:add(p_link, range)
    if header then
        t:add(f.link_magic, tvb(0, 1))
        t:add(f.link_index, tvb(1, 3))
    end
    if l == nil then
        t:append_text(string.format(": link %d", index)
            .. (sc and string.format(" (none of scenario %s)", sc.name) or ""))
        return string.format("link %d", index)
    end
    local from, to, leg = legs(l, to_channel)
    t:append_text(string.format(": %s, %s -> %s (link %d of scenario %s)", l.name, from, to,
        l.index, sc.name))
    t:add(f.link_scenario, range, sc.name):set_generated()
    t:add(f.link_name, range, l.name):set_generated()
    if not header then
        t:add(f.link_index, range, l.index):set_generated()
    end
    t:add(f.link_kind, range, l.kind):set_generated()
    t:add(f.link_from, range, from):set_generated()
    t:add(f.link_to, range, to):set_generated()
    if leg ~= nil then
        t:add(f.link_leg, range, leg):set_generated()
    end
    return string.format("%s -> %s: %s", from, to, l.name)
end

-- one unit of a kind ("cltu", "tm", "aos"), with the scenario's coding when known
local function dissect_unit(kind, tvb, pinfo, tree, sc, prefix)
    notes = {}
    local coding = sc and sc.coding[LINK_CODING[kind]]
    local summary
    if kind == "cltu" then
        summary = dissect_cltu(tvb, pinfo, tree, coding)
    else
        summary = dissect_cadu(tvb, pinfo, tree, kind == "aos", coding)
    end
    set_columns(pinfo, UNIT_NAMES[kind], prefix and (prefix .. " | " .. summary) or summary)
end

local function not_a_unit(tvb, pinfo, tree, what)
    tree:add(p_unit, tvb()):append_text(what)
    pinfo.cols.protocol:set("linkstack")
    return tvb:len()
end

-- a datagram on a port of a scenario: on an end's port its link header names the
-- link (format 3); on a port of one link (formats 1, 2) the port does
p_unit.dissector = function(tvb, pinfo, tree)
    local at = links_by_port[pinfo.dst_port]
    local sc = at and at.sc or scenario_of(pinfo)
    if at ~= nil and at.headed then
        local index = link_index_of(tvb)
        if index == nil then
            return not_a_unit(tvb, pinfo, tree,
                ": no link header (0x4c, then the link's index) on a port of the daemons")
        end
        local l = sc.by_index[index]
        local prefix = add_link(tvb, tree, sc, l, index, at.to_channel, true)
        local unit = tvb(LINK_HEADER_LEN):tvb()
        local kind = l and LINK_UNITS[l.kind] or sniff_unit(unit, sc)
        if kind == nil then
            return not_a_unit(unit, pinfo, tree, ": neither a CLTU (EB90) nor a CADU (1ACFFC1D)")
        end
        dissect_unit(kind, unit, pinfo, tree, sc, prefix)
        return tvb:len()
    end
    local prefix = nil
    local kind
    if at ~= nil and tvb:len() > 0 then
        prefix = add_link(tvb, tree, sc, at.link, at.link.index, at.to_channel, false)
        kind = LINK_UNITS[at.link.kind]
    else
        kind = sniff_unit(tvb, sc)
    end
    if kind == nil then
        return not_a_unit(tvb, pinfo, tree, ": neither a CLTU (EB90) nor a CADU (1ACFFC1D)")
    end
    dissect_unit(kind, tvb, pinfo, tree, sc, prefix)
    return tvb:len()
end

-- anywhere else: by content alone (after a link header, if there is one; its link is
-- named when a scenario has a link of that index and kind)
local function heuristic(tvb, pinfo, tree)
    local sc = scenario_of(pinfo)
    local index = link_index_of(tvb)
    if index ~= nil then
        local unit = tvb(LINK_HEADER_LEN):tvb()
        local kind, uslp = sniff_unit(unit, sc)
        if kind == nil then
            return false
        end
        local l = sc and sc.by_index and sc.by_index[index]
        if l ~= nil and LINK_UNITS[l.kind] ~= kind then
            if uslp and LINK_UNITS[l.kind] == "aos" then
                kind = "aos" -- a USLP frame's CADU on a laser link
            else
                l = nil
            end
        end
        local prefix = add_link(tvb, tree, l and sc, l, index, nil, true)
        dissect_unit(kind, unit, pinfo, tree, sc, prefix)
        return true
    end
    local kind = sniff_unit(tvb, sc)
    if kind == nil then
        return false
    end
    dissect_unit(kind, tvb, pinfo, tree, sc, nil)
    return true
end
p_unit:register_heuristic("udp", heuristic)

local udp_port = DissectorTable.get("udp.port")
udp_port:add(47001, p_cltu)
udp_port:add(47002, p_tm_cadu)
udp_port:add(47003, p_aos_cadu)
udp_port:add(47011, p_tc)
udp_port:add(47012, p_tm)
udp_port:add(47013, p_aos)
udp_port:add(47014, p_uslp)
if ccsds_dissector() then
    udp_port:add(47020, p_spp)
end

-- A scenario (the table a file of `linkstack wireshark` holds): its ports go to
-- linkstack.unit, its names to the fields that show them.
-- The security associations of a scenario's "sdls" (format 2): each link kind's indexed by
-- SPI (by_spi); an error that names what is wrong
local function index_sdls(sc)
    local sdls = sc.sdls
    if sdls == nil or not sdls.enabled then
        return
    end
    for _, kind in pairs(FRAME_LINKS) do
        local on = sdls[kind]
        if on ~= nil then
            on.by_spi = {}
            for i, sa in ipairs(on.sas or {}) do
                for _, key in ipairs({ "spi", "iv_len", "sn_len", "pad_len", "mac_len" }) do
                    if type(sa[key]) ~= "number" or sa[key] < 0 then
                        error(string.format("scenario %s: sdls.%s.sas[%d].%s must be a number "
                            .. "of 0 or more: make the file again with `linkstack wireshark`",
                            tostring(sc.name), kind, i, key), 3)
                    end
                end
                if not SDLS_SERVICES[sa.service] then
                    error(string.format("scenario %s: sdls.%s.sas[%d].service %s is none of "
                        .. "clear, auth, enc, aead", tostring(sc.name), kind, i,
                        tostring(sa.service)), 3)
                end
                on.by_spi[sa.spi] = sa
            end
        end
    end
end

local function add_scenario(sc)
    if type(sc) ~= "table" or not SCENARIO_FORMATS[sc.format] then
        error(string.format("linkstack.lua %s reads scenario files of formats %s; this one is "
            .. "of format %s: make it again with `linkstack wireshark` (and use the dissector "
            .. "of the same linkstack)", LINKSTACK_LUA_VERSION, SCENARIO_FORMATS_TEXT,
            type(sc) == "table" and tostring(sc.format) or "(none)"), 2)
    end
    index_sdls(sc)
    scenarios[#scenarios + 1] = sc
    sc.by_index = {}
    for _, l in ipairs(sc.links) do
        sc.by_index[l.index] = l
    end
    if sc.ends ~= nil then -- format 3: a pair of ports per end, links by their header
        for _, e in ipairs(sc.ends) do
            links_by_port[e.channel_port] = { sc = sc, headed = true, to_channel = true }
            links_by_port[e.node_port] = { sc = sc, headed = true, to_channel = false }
            udp_port:add(e.channel_port, p_unit)
            udp_port:add(e.node_port, p_unit)
        end
        return
    end
    for _, l in ipairs(sc.links) do -- formats 1 and 2: a port per link and end
        links_by_port[l.channel_port] = { sc = sc, link = l, to_channel = true }
        links_by_port[l.node_port] = { sc = sc, link = l, to_channel = false }
        udp_port:add(l.channel_port, p_unit)
        udp_port:add(l.node_port, p_unit)
    end
end

-- Scenario files and this one may load in either order (Wireshark loads a plugins
-- folder in no set order; each script has globals of its own, _G is shared): one
-- loaded before left its table in _G.linkstack_pending_scenarios; one loaded after
-- calls _G.linkstack_add_scenario.
_G.linkstack_add_scenario = add_scenario
do
    local pending = rawget(_G, "linkstack_pending_scenarios")
    _G.linkstack_pending_scenarios = nil
    if type(pending) == "table" then
        for _, sc in ipairs(pending) do
            add_scenario(sc)
        end
    end
end
