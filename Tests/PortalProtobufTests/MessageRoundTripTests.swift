import PortalAPI
import PortalProtobuf
import Testing

@Suite("Generated messages encode and decode through protobuf-c")
struct MessageRoundTripTests {
    typealias AllKinds = Portal_Testing_V1_AllKinds
    typealias Nested = Portal_Testing_V1_Nested

    static func everyFieldSet() -> AllKinds {
        var message = AllKinds()
        message.int32Value = -42
        message.int64Value = -9_000_000_000
        message.uint32Value = 4_000_000_000
        message.uint64Value = 18_000_000_000_000_000_000
        message.sint32Value = -7
        message.sint64Value = -8_000_000_000
        message.fixed32Value = 0xDEAD_BEEF
        message.fixed64Value = 0xDEAD_BEEF_CAFE_F00D
        message.sfixed32Value = -123_456
        message.sfixed64Value = -123_456_789_012
        message.floatValue = 1.5
        message.doubleValue = -2.25e100
        message.boolValue = true
        message.stringValue = "Grüße, 世界 🎉"
        message.bytesValue = [0, 1, 2, 255, 0]
        message.colour = .green
        message.nested = Nested.with(label: "inner", weight: 7)
        message.time = Google_Protobuf_Timestamp(seconds: 1_772_719_629, nanos: 5)
        message.maybeInt32 = 0
        message.maybeString = ""
        message.maybeBool = false
        message.maybeColour = .unspecified
        message.maybeBytes = []
        message.repeatedInt32 = [1, -2, 3, Int32.max, Int32.min]
        message.repeatedString = ["a", "", "ccc"]
        message.repeatedBytes = [[1], [], [2, 3]]
        message.repeatedNested = [Nested.with(label: "x", weight: 1), Nested()]
        message.repeatedColour = [.red, .green, .unspecified]
        message.repeatedDouble = [0.5, -0.25]
        message.labels = ["team": "licensing", "": "empty key"]
        message.nestedByID = [1: Nested.with(label: "one", weight: 1), -5: Nested()]
        message.choice = .choiceNested(Nested.with(label: "chosen", weight: 9))
        return message
    }

    @Test func everyFieldKindSurvivesARoundTrip() throws {
        let original = Self.everyFieldSet()
        let decoded = try AllKinds(serializedBytes: original.serializedBytes())
        #expect(decoded == original)
    }

    @Test func defaultMessageEncodesToNothing() throws {
        #expect(AllKinds().serializedBytes().isEmpty)
        #expect(try AllKinds(serializedBytes: []) == AllKinds())
    }

    @Test func optionalFieldsSetToZeroKeepTheirPresence() throws {
        var message = AllKinds()
        message.maybeInt32 = 0
        message.maybeBool = false
        let decoded = try AllKinds(serializedBytes: message.serializedBytes())
        #expect(decoded.maybeInt32 == 0)
        #expect(decoded.maybeBool == false)
        #expect(decoded.maybeString == nil)
        #expect(decoded.maybeColour == nil)
    }

    @Test(arguments: [
        AllKinds.Choice.choiceText("hello"), .choiceText(""), .choiceNumber(0), .choiceNumber(-1),
        .choiceNested(Nested()),
    ])
    func everyOneofMemberRoundTrips(choice: AllKinds.Choice) throws {
        var message = AllKinds()
        message.choice = choice
        #expect(try AllKinds(serializedBytes: message.serializedBytes()).choice == choice)
    }

    @Test func encodingMatchesTheProtobufWireFormat() {
        // field 1 (string "a"), field 2 (varint 1)
        #expect(Nested.with(label: "a", weight: 1).serializedBytes() == [0x0A, 0x01, 0x61, 0x10, 0x01])
    }

    @Test func unknownEnumValuesAreKept() throws {
        // field 16 (varint 99): an enum value this schema does not define
        let decoded = try AllKinds(serializedBytes: [0x80, 0x01, 99])
        #expect(decoded.colour == .unrecognized(99))
        #expect(decoded.serializedBytes() == [0x80, 0x01, 99])
    }

    @Test func unknownFieldsSurviveAReencode() throws {
        // Nested with field 1 = "a" plus unknown field 9 (varint 5) and unknown field 10 (bytes "zz")
        let wire: [UInt8] = [0x0A, 0x01, 0x61, 0x48, 0x05, 0x52, 0x02, 0x7A, 0x7A]
        let decoded = try Nested(serializedBytes: wire)
        #expect(decoded.label == "a")
        #expect(decoded.unknownFields.fields.map(\.number) == [9, 10])
        let reencoded = try Nested(serializedBytes: decoded.serializedBytes())
        #expect(reencoded == decoded)
        #expect(reencoded.unknownFields.fields.count == 2)
    }

    @Test(arguments: [
        [0x0A, 0x05, 0x61] as [UInt8],  // string field longer than the input
        [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],  // varint tag that never ends
        [0x0F],  // wire type 7 does not exist
        [0x8A, 0x01, 0x03, 0x0A, 0x09, 0x00],  // nested message whose string overruns it
    ])
    func malformedBytesAreAClearError(bytes: [UInt8]) {
        #expect {
            _ = try AllKinds(serializedBytes: bytes)
        } throws: { error in
            (error as? ProtoDecodingError)?.description.contains("portal.testing.v1.AllKinds") == true
        }
    }

    @Test func randomBytesNeverCrashTheDecoder() {
        var generator = SystemRandomNumberGenerator()
        var decodedCount = 0
        for length in 0..<2_000 {
            let bytes = (0..<(length % 64)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if let message = try? AllKinds(serializedBytes: bytes) {
                decodedCount += 1
                _ = message.serializedBytes()
            }
        }
        #expect(decodedCount > 0)
    }

    @Test func timestampsConvertToAndFromSeconds() {
        let time = Google_Protobuf_Timestamp(secondsSince1970: 1.25)
        #expect(time.seconds == 1 && time.nanos == 250_000_000)
        #expect(time.secondsSince1970 == 1.25)
        #expect(time.isValid)
        #expect(!Google_Protobuf_Timestamp(seconds: 0, nanos: -1).isValid)
        for milliseconds: Int64 in [0, 1, 999, 1000, 1_772_719_629_123, -1, -999, -1000, -1001] {
            let stamp = Google_Protobuf_Timestamp(milliseconds: milliseconds)
            #expect(stamp.isValid)
            #expect(stamp.milliseconds == milliseconds)
        }
    }
}

extension Portal_Testing_V1_Nested {
    static func with(label: String, weight: Int64) -> Self {
        var nested = Self()
        nested.label = label
        nested.weight = weight
        return nested
    }
}

@Suite("String fields are checked before protobuf-c sees them")
struct StringValidationTests {
    @Test func aNULInsideAStringIsRefusedNamingTheField() {
        // field 14 (string) = "a\0b"
        #expect {
            _ = try Portal_Testing_V1_AllKinds(serializedBytes: [0x72, 0x03, 0x61, 0x00, 0x62])
        } throws: { error in
            (error as? ProtoDecodingError)?.description.contains("field string_value contains a NUL character") == true
        }
    }

    @Test func invalidUTF8InANestedStringIsRefusedWithItsPath() {
        // field 17 (Nested) containing field 1 (label) = 0xFF
        #expect {
            _ = try Portal_Testing_V1_AllKinds(serializedBytes: [0x8A, 0x01, 0x03, 0x0A, 0x01, 0xFF])
        } throws: { error in
            (error as? ProtoDecodingError)?.description.contains("field nested.label is not valid UTF-8") == true
        }
    }

    /// Found by the protobuf fuzz target: protobuf-c read these as unknown fields it could not encode again.
    @Test(arguments: [
        [0x80, 0x00, 0x00] as [UInt8],  // field 0 in a two-byte tag, varint 0
        [0xF8, 0xFF, 0xFF, 0xFF, 0x1F, 0x01],  // field 2^32 - 1 (beyond 2^29 - 1), varint 1
    ])
    func invalidFieldNumbersAreRefused(bytes: [UInt8]) {
        #expect {
            _ = try Bench_V1_Resp(serializedBytes: bytes)
        } throws: { error in
            (error as? ProtoDecodingError)?.description.contains("is not valid") == true
        }
    }

    /// Found by the protobuf fuzz target: map entries followed the Dictionary's own order, so equal
    /// messages could encode to different bytes.
    @Test func equalMapsEncodeToEqualBytes() throws {
        var forward = Portal_Testing_V1_AllKinds()
        var backward = Portal_Testing_V1_AllKinds()
        for key in 0..<50 {
            forward.labels["k\(key)"] = "v"
            forward.nestedByID[Int32(key)] = .init()
        }
        for key in (0..<50).reversed() {
            backward.labels["k\(key)"] = "v"
            backward.nestedByID[Int32(key)] = .init()
        }
        #expect(forward == backward)
        #expect(forward.serializedBytes() == backward.serializedBytes())
        let decoded = try Portal_Testing_V1_AllKinds(serializedBytes: forward.serializedBytes())
        #expect(decoded.serializedBytes() == forward.serializedBytes())
    }

    @Test func bytesFieldsMayHoldAnything() throws {
        var message = Portal_Testing_V1_AllKinds()
        message.bytesValue = [0, 0xFF, 0]
        #expect(try Portal_Testing_V1_AllKinds(serializedBytes: message.serializedBytes()) == message)
    }

    @Test func encodingNeverCutsAStringAtANUL() throws {
        var message = Portal_Testing_V1_AllKinds()
        message.stringValue = "before\u{0}after"
        #expect(
            try Portal_Testing_V1_AllKinds(serializedBytes: message.serializedBytes()).stringValue
                == "before\u{FFFD}after")
    }
}
