import PortalAPI
import PortalRPC
import Testing

@testable import PortalHTTP2

@Suite("gRPC message framing and status headers")
struct FramingTests {
    /// Frames messages the way a stream sends them, copying out `chunk` bytes at a time.
    static func framed(_ messages: [[UInt8]], chunk: Int) -> [UInt8] {
        var outbound = OutboundQueue()
        for message in messages { outbound.appendMessage(message) }
        var wire: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: chunk)
        while outbound.count > 0 {
            let count = buffer.withUnsafeMutableBytes { outbound.read(into: $0) }
            wire += buffer[..<count]
        }
        return wire
    }

    @Test func headersTheTransportOwnsNeverBecomeCallMetadata() {
        var head = RequestHead()
        func add(_ name: String, _ value: String) {
            Array(name.utf8).withUnsafeBytes { name in
                Array(value.utf8).withUnsafeBytes { head.add(name: name, value: $0) }
            }
        }
        for name in HTTP2Metadata.reserved.sorted() { add(name, "1") }
        add("x-request-id", "req-7")
        add("user-agent", "grpc-python/1.62")
        add("hostname", "kept")
        #expect(head.metadata.map(\.key) == ["x-request-id", "user-agent", "hostname"])
        #expect(head.requestID == "req-7")
        #expect(head.isGRPC == false && head.timeout == "1" && head.encoding == "1")
    }

    @Test(arguments: [1, 3, 7, 1000])
    func outboundMessagesAreFramedWithALengthPrefix(chunk: Int) {
        let message = (0..<300).map { UInt8(truncatingIfNeeded: $0) }
        let wire = Self.framed([[1, 2, 3], [], message], chunk: chunk)
        #expect(Array(wire[0..<8]) == [0, 0, 0, 0, 3, 1, 2, 3])
        #expect(Array(wire[8..<13]) == [0, 0, 0, 0, 0])
        #expect(Array(wire[13..<18]) == [0, 0, 0, 1, 44])
        #expect(Array(wire[18...]) == message)
    }

    @Test(arguments: [1, 4, 1000])
    func plainPartsGoOutAsTheyAre(chunk: Int) {
        var outbound = OutboundQueue()
        outbound.appendBytes([1, 2, 3])
        outbound.appendBytes([])
        outbound.appendMessage([7])
        outbound.appendBytes([4, 5])
        var wire: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: chunk)
        while outbound.count > 0 {
            let count = buffer.withUnsafeMutableBytes { outbound.read(into: $0) }
            wire += buffer[..<count]
        }
        #expect(wire == [1, 2, 3, 0, 0, 0, 0, 1, 7, 4, 5])
    }

    @Test func messagesSplitAcrossChunksAreReassembled() throws {
        let wire = Self.framed([[1, 2, 3], [], [9]], chunk: 2)
        var deframer = GRPCMessageDeframer(maxMessageBytes: 100)
        var messages: [[UInt8]] = []
        for byte in wire {
            messages += try [byte].withUnsafeBytes { try deframer.append($0) }
        }
        #expect(messages == [[1, 2, 3], [], [9]])
        try deframer.finish()
    }

    @Test func oversizedMessagesAreRefusedBeforeTheyArrive() {
        var deframer = GRPCMessageDeframer(maxMessageBytes: 4)
        #expect(throws: GRPCMessageDeframer.Failure.messageTooLarge(announced: 5, limit: 4)) {
            _ = try ([0, 0, 0, 0, 5] as [UInt8]).withUnsafeBytes { try deframer.append($0) }
        }
    }

    @Test func compressedMessagesWithoutEncodingAreRefused() {
        var deframer = GRPCMessageDeframer(maxMessageBytes: 100)
        #expect(throws: GRPCMessageDeframer.Failure.compressedWithoutEncoding) {
            _ = try ([1, 0, 0, 0, 1, 7] as [UInt8]).withUnsafeBytes { try deframer.append($0) }
        }
    }

    @Test func aStreamEndingInsideAMessageIsTruncated() throws {
        var deframer = GRPCMessageDeframer(maxMessageBytes: 100)
        _ = try ([0, 0, 0, 0, 3, 1] as [UInt8]).withUnsafeBytes { try deframer.append($0) }
        #expect(throws: GRPCMessageDeframer.Failure.truncated(missing: 2)) { try deframer.finish() }
    }

    @Test func statusMessagesArePercentEncoded() {
        let message = "café 100% ✓\nnext"
        let encoded = GRPCStatusHeaders.percentEncode(message)
        #expect(encoded == "caf%C3%A9 100%25 %E2%9C%93%0Anext")
        #expect(GRPCStatusHeaders.percentDecode(encoded) == message)
        #expect(GRPCStatusHeaders.percentDecode("bad %zz escape %") == "bad %zz escape %")
    }

    @Test func statusDetailsAreTheGoogleRPCStatusMessage() throws {
        let details = [
            RPCErrorDetail(typeURL: "type.googleapis.com/google.rpc.BadRequest", value: [10, 3, 1, 2, 3]),
            RPCErrorDetail(typeURL: "type.googleapis.com/x.Empty", value: []),
        ]
        let encoded = RPCStatusDetails.encode(code: .failedPrecondition, message: "too few ✓", details: details)
        let status = try Google_Rpc_Status(serializedBytes: encoded)
        #expect(status.code == 9)
        #expect(status.message == "too few ✓")
        #expect(status.details.map(\.typeURL) == details.map(\.typeURL))
        #expect(status.details.map(\.value) == details.map(\.value))

        var other = Google_Rpc_Status()
        other.code = 5
        other.message = "gone"
        var any = Google_Protobuf_Any()
        any.typeURL = "type.googleapis.com/google.rpc.ResourceInfo"
        any.value = [1, 2, 250]
        other.details = [any]
        #expect(
            RPCStatusDetails.decodeDetails(other.serializedBytes()) == [
                RPCErrorDetail(typeURL: any.typeURL, value: [1, 2, 250])
            ])
        #expect(RPCStatusDetails.decodeDetails([0x1A, 0x05, 0x0A]) == nil, "a length past the end is refused")
        #expect(
            RPCStatusDetails.decodeDetails([0x1A, 0x02, 0x0A, 0x80]) == nil, "a truncated nested length is refused")
    }

    @Test func errorDetailsSurviveTheTrailers() throws {
        let error = RPCError(
            .failedPrecondition, "too few licenses",
            details: [RPCErrorDetail(typeURL: "type.googleapis.com/x.Y", value: [1, 2])])
        let fields = GRPCStatusHeaders.trailers(for: error, metadata: ["x-extra": "1"])
        let decoded = try #require(GRPCStatusHeaders.error(fromTrailers: fields, metadata: [:]))
        #expect(decoded.code == .failedPrecondition)
        #expect(decoded.message == "too few licenses")
        #expect(decoded.details == error.details)
        #expect(fields.contains { $0 == ("x-extra", "1") })
    }
}

@Suite("Receive window")
struct ReceiveWindowTests {
    @Test func bytesGoBackAtOnceWhileTheReaderKeepsUp() {
        var window = ReceiveWindow()
        #expect(window.received(1000, buffered: 0) == 1000)
        #expect(window.received(500, buffered: 1000) == 500)
        #expect(window.owed == 0)
    }

    @Test func aReaderFallingBehindHoldsTheWindowUntilItCatchesUp() {
        var window = ReceiveWindow()
        let behind = ReceiveWindow.bufferedBytesLimit
        #expect(window.received(16_384, buffered: behind) == 0)
        #expect(window.received(16_384, buffered: behind) == 0)
        #expect(window.repay(buffered: behind) == 0)
        #expect(window.repay(buffered: behind - 1) == 32_768)
        #expect(window.repay(buffered: 0) == 0)
    }
}
