import PortalRPC
import Testing

@Suite("grpc-timeout, base64 and metadata")
struct WireFormatsTests {
    @Test(arguments: [
        ("100m", Duration.milliseconds(100)), ("5S", .seconds(5)), ("2M", .seconds(120)), ("1H", .seconds(3600)),
        ("250u", .microseconds(250)), ("7n", .nanoseconds(7)), ("99999999S", .seconds(99_999_999)),
    ])
    func timeoutsParse(text: String, expected: Duration) {
        #expect(GRPCTimeout.parse(text) == expected)
    }

    @Test(arguments: ["", "m", "100", "100x", "123456789S", "-5S", "1.5S"])
    func malformedTimeoutsAreRejected(text: String) {
        #expect(GRPCTimeout.parse(text) == nil)
    }

    @Test func formattedTimeoutsRoundTripWithoutGettingShorter() {
        for duration in [Duration.milliseconds(1), .seconds(30), .nanoseconds(123), .seconds(86_400 * 30)] {
            let text = GRPCTimeout.format(duration)
            #expect(text.count <= 9)
            #expect(GRPCTimeout.parse(text)! >= duration)
        }
    }

    @Test func base64RoundTripsEveryLength() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
            #expect(Base64.decode(Base64.encode(bytes, padding: true)) == bytes)
        }
        #expect(Base64.encode(Array("Man".utf8)) == "TWFu")
        #expect(Base64.encode([0, 1], padding: true) == "AAE=")
    }

    @Test func metadataKeepsOrderAndLowercasesKeys() {
        var metadata: Metadata = ["X-Team": "licensing"]
        metadata.addString("second", forKey: "x-team")
        metadata.addBinary([1, 2], forKey: "Trace-Bin")
        #expect(metadata["x-team"] == ["licensing", "second"])
        #expect(metadata.firstBinary(forKey: "trace-bin") == [1, 2])
        metadata.removeAll(forKey: "X-TEAM")
        #expect(metadata.count == 1)
    }

    @Test func generatedRequestIDsShareTheConnectionPrefixAndCountInHex() {
        var generator = RequestID.Generator()
        var ids: [String] = []
        for _ in 0..<300 { ids.append(generator.next()) }
        let prefix = String(ids[0].prefix(16))
        #expect(prefix.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        #expect(ids[0] == prefix + "-1")
        #expect(ids[15] == prefix + "-10")
        #expect(ids[255] == prefix + "-100")
        #expect(ids[299] == prefix + "-12c")
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { RequestID.accepting($0) == $0 })
    }

    @Test func statusCodesOutsideTheRangeAreUnknown() {
        #expect(RPCStatusCode(wireValue: 7) == .permissionDenied)
        #expect(RPCStatusCode(wireValue: 99) == .unknown)
        #expect(RPCStatusCode.failedPrecondition.description == "FAILED_PRECONDITION")
    }
}
