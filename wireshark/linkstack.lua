-- linkstack.lua: Wireshark dissectors for the units that linkstack captures.
--
-- linkstack (linkstack/capture/pcap.py) writes every unit it moves as the payload of
-- one UDP datagram, with one port per layer (source and destination alike):
--
--   cltu          47001  CLTU: start sequence, BCH(63,56) codeblocks, tail
--   tm_cadu       47002  TM CADU: ASM + randomized Reed-Solomon codeblock
--   aos_cadu      47003  AOS CADU: the same around an AOS frame
--   tc_frame      47011  TC Transfer Frame (CCSDS 232.0-B-4)
--   tm_frame      47012  TM Transfer Frame (CCSDS 132.0-B-3)
--   aos_frame     47013  AOS Transfer Frame (CCSDS 732.0-B-4)
--   space_packet  47020  Space Packet (CCSDS 133.0-B-2): Wireshark's ccsds
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
--  * Space Packets inside TM/AOS frames (from the First Header Pointer) and TC
--    frames (blocked or segmented) go to Wireshark's ccsds dissector; packets
--    that span frames are reassembled per virtual channel (TC: per VC and MAP,
--    following N(S) as FARM-1 would) on the first pass over the capture.
--
-- Written for linkstack. Tested with tshark 4.0 (Lua 5.2); it keeps to the Lua
-- API of Wireshark 3.x/4.x and to what Lua 5.1-5.4 share. Install: see
-- wireshark/README.md.

local LINKSTACK_LUA_VERSION = "1.0"
if rawget(_G, "set_plugin_info") then
    set_plugin_info({
        version = LINKSTACK_LUA_VERSION,
        description = "linkstack: CLTU, CADU, TC/TM/AOS frames over UDP ports 47001-47020",
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

-- ---------------------------------------------------------------------------
-- protocols and fields
-- ---------------------------------------------------------------------------
local p_cltu = Proto("linkstack.cltu", "linkstack CLTU (CCSDS 231.0-B-4)")
local p_cadu = Proto("linkstack.cadu", "linkstack CADU (CCSDS 131.0-B-4)")
local p_tc = Proto("linkstack.tc", "linkstack TC Transfer Frame (CCSDS 232.0-B-4)")
local p_tm = Proto("linkstack.tm", "linkstack TM Transfer Frame (CCSDS 132.0-B-3)")
local p_aos = Proto("linkstack.aos", "linkstack AOS Transfer Frame (CCSDS 732.0-B-4)")
local p_clcw = Proto("linkstack.clcw", "linkstack CLCW (CCSDS 232.1-B-2)")

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
p_clcw.fields = fields_of("clcw_")

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
}
p_cltu.experts = { e.bch, e.bch_corrected, e.start, e.tail }
p_cadu.experts = { e.asm }
p_tc.experts = { e.fecf, e.malformed, e.sequence } -- shared with TM and AOS

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

local function reset_state()
    zone_state, zone_done, tc_state, tc_done = {}, {}, {}, {}
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
    local mc, vc = tvb(2, 1):uint(), tvb(3, 1):uint()
    local summary = string.format("TM SCID %d VC %d MC %d VC# %d FHP %s", scid, vcid, mc, vc,
        fhp_text)
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
    if pos < stop then
        local data_t = t:add(f.tm_data, tvb(pos, stop - pos))
        if band(dfs, 0x4000) == 0 then
            local key = stream_key(pinfo, "tm", scid, vcid)
            local handed, reassembled = packet_zone(tvb, pos, stop - pos, fhp, pinfo, data_t,
                key, vc, 256)
            summary = summary .. ", " .. packets_text(handed, reassembled)
        end
    else
        t:add_proto_expert_info(e.malformed, "no data field")
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
    local summary = string.format("AOS SCID %d VC %d VC# %d", scid, vcid, full)
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
    local data_t = t:add(f.aos_data, tvb(pos, stop - pos))
    if vcid == 63 then
        data_t:append_text(" (idle)")
        summary = summary .. " idle"
    elseif stop - pos >= 3 then
        local head = tvb(pos, 2)
        data_t:add(f.aos_mpdu_spare, head)
        local fhp, fhp_text = add_fhp(data_t, f.aos_fhp, head)
        local key = stream_key(pinfo, "aos", scid, vcid)
        local modulo = usage and 268435456 or 16777216
        local handed, reassembled = packet_zone(tvb, pos + 2, stop - pos - 2, fhp, pinfo, data_t,
            key, full, modulo)
        summary = summary .. " FHP " .. fhp_text .. ", " .. packets_text(handed, reassembled)
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
    local summary = string.format("TC %s SCID %d VC %d N(S) %d", type_name, scid, vcid, ns)
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
    if kind == 3 then -- a control command
        local cc_r = tvb(pos, stop - pos)
        local code = tvb(pos, 1):uint()
        local cc_t = t:add(f.tc_cc_code, tvb(pos, 1))
        if code == 0x82 and stop - pos == 3 then
            cc_t:add(f.tc_cc_vr, tvb(pos + 2, 1))
            local vr = tvb(pos + 2, 1):uint()
            summary = summary .. string.format(" Set V(R) %d", vr)
            if not pinfo.visited then
                tc_state_at(stream_key(pinfo, "tc", scid, vcid)).vr = vr
            end
        elseif code == 0x00 and stop - pos == 1 then
            summary = summary .. " Unlock"
        else
            cc_t:add_proto_expert_info(e.malformed,
                "not a control command: Unlock is 00, Set V(R) is 82 00 V(R)")
            t:add(f.tc_data, cc_r)
            summary = summary .. " [bad control command]"
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
        if stop > pos then
            local data_t = t:add(f.tc_data, tvb(pos, stop - pos))
            local vc_key = stream_key(pinfo, "tc", scid, vcid)
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
                if accepted then
                    local data = tvb:raw(pos, stop - pos)
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
            data_t:add(f.tc_accepted, tvb(4, 1), done.accepted):set_generated()
            if not done.accepted then
                data_t:add_proto_expert_info(e.sequence,
                    "N(S) out of sequence (a retransmission, or frames missing before it): "
                    .. "not taken into reassembly")
            end
            local handed = 0
            if seq_flags == 3 then
                local ppos = pos
                while stop - ppos >= 7 do
                    local plen = 7 + tvb(ppos + 4, 2):uint()
                    if plen > stop - ppos then
                        break
                    end
                    call_ccsds(tvb(ppos, plen):tvb(), pinfo, data_t)
                    handed = handed + 1
                    ppos = ppos + plen
                end
                if ppos < stop then
                    data_t:add(f.zone_junk, tvb(ppos, stop - ppos))
                end
            else
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
    return finish_frame(t, tvb, flen, fecf, f.tc_fecf, f.tc_fecf_status, f.tc_fecf_calc, summary)
end

-- ---------------------------------------------------------------------------
-- CLTU
-- ---------------------------------------------------------------------------
local function dissect_cltu(tvb, pinfo, tree)
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
    if p_cltu.prefs.randomized then
        data = derandomize(data, PN_TC)
        t:add(f.cltu_randomized, tvb(2, 0), true):set_generated()
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
local function dissect_cadu(tvb, pinfo, tree, is_aos)
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
    if p_cadu.prefs.randomized then
        block = derandomize(block, PN_TM)
        t:add(f.cadu_randomized, tvb(4, 0), true):set_generated()
    end
    local version = is_aos and 1 or 0
    local has_fecf = (is_aos and p_aos.prefs.fecf) or (not is_aos and p_tm.prefs.fecf)
    local check = p_cadu.prefs.rs_check
    if check == RS_AUTO then
        check = nil
        if has_fecf then
            for _, c in ipairs(RS_CANDIDATES) do
                local flen = cb_len - c
                if flen >= 8 and rshift(block:byte(1), 6) == version
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
    if p_cadu.prefs.randomized then
        ftvb = ByteArray.new(block:sub(1, flen), true):tvb("Derandomized frame")
    else
        ftvb = tvb(4, flen):tvb()
    end
    local inner
    if is_aos then
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
local function set_columns(pinfo, proto_name, summary)
    pinfo.cols.protocol:set(proto_name)
    pinfo.cols.info:set(summary)
end

p_cltu.dissector = function(tvb, pinfo, tree)
    set_columns(pinfo, "CLTU", dissect_cltu(tvb, pinfo, tree))
    return tvb:len()
end

local function tm_cadu_dissector(tvb, pinfo, tree)
    set_columns(pinfo, "TM CADU", dissect_cadu(tvb, pinfo, tree, false))
    return tvb:len()
end
local p_tm_cadu = Proto("linkstack.tm_cadu", "linkstack TM CADU (port 47002)")
p_tm_cadu.dissector = tm_cadu_dissector
p_cadu.dissector = tm_cadu_dissector
local p_aos_cadu = Proto("linkstack.aos_cadu", "linkstack AOS CADU (port 47003)")
p_aos_cadu.dissector = function(tvb, pinfo, tree)
    set_columns(pinfo, "AOS CADU", dissect_cadu(tvb, pinfo, tree, true))
    return tvb:len()
end

p_tc.dissector = function(tvb, pinfo, tree)
    set_columns(pinfo, "TC", dissect_tc(tvb, pinfo, tree))
    return tvb:len()
end
p_tm.dissector = function(tvb, pinfo, tree)
    set_columns(pinfo, "TM", dissect_tm(tvb, pinfo, tree))
    return tvb:len()
end
p_aos.dissector = function(tvb, pinfo, tree)
    set_columns(pinfo, "AOS", dissect_aos(tvb, pinfo, tree))
    return tvb:len()
end

local udp_port = DissectorTable.get("udp.port")
udp_port:add(47001, p_cltu)
udp_port:add(47002, p_tm_cadu)
udp_port:add(47003, p_aos_cadu)
udp_port:add(47011, p_tc)
udp_port:add(47012, p_tm)
udp_port:add(47013, p_aos)
if ccsds_dissector() then
    udp_port:add(47020, ccsds_dissector())
end
