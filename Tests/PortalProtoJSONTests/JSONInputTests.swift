import PortalAPI
import Testing

@Suite("JSON input accepts every spelling proto3 JSON allows")
struct JSONInputTests {
    typealias AllKinds = Portal_Testing_V1_AllKinds

    @Test func protoFieldNamesAreAcceptedLikeJSONNames() throws {
        let byJSONName = try CodecFixture.message(
            #"{"int32Value": 1, "nestedById": {"3": {"label": "x"}}}"#, as: AllKinds.self)
        let byProtoName = try CodecFixture.message(
            #"{"int32_value": 1, "nested_by_id": {"3": {"label": "x"}}}"#, as: AllKinds.self)
        #expect(byJSONName == byProtoName)
        #expect(byJSONName.int32Value == 1 && byJSONName.nestedByID[3]?.label == "x")
    }

    @Test func integersMayBeNumbersOrStringsAndIntegralExponents() throws {
        let message = try CodecFixture.message(
            #"{"int32Value": "-7", "int64Value": "9223372036854775807", "uint64Value": 18446744073709551615, "sint32Value": 1e2, "#
                + #""sint64Value": "-1.5e1", "fixed32Value": 4.0, "sfixed64Value": -0, "uint32Value": "4294967295"}"#,
            as: AllKinds.self)
        #expect(message.int32Value == -7 && message.int64Value == Int64.max && message.uint64Value == UInt64.max)
        #expect(message.sint32Value == 100 && message.sint64Value == -15 && message.fixed32Value == 4)
        #expect(message.sfixed64Value == 0 && message.uint32Value == UInt32.max)
    }

    @Test func floatsMayBeNumbersNamesOrNumericStrings() throws {
        let message = try CodecFixture.message(
            #"{"floatValue": "Infinity", "doubleValue": "1.25", "repeatedDouble": ["NaN", "-Infinity", 1e308, -0.0, 3]}"#,
            as: AllKinds.self)
        #expect(message.floatValue == .infinity && message.doubleValue == 1.25)
        #expect(
            message.repeatedDouble.count == 5 && message.repeatedDouble[0].isNaN
                && message.repeatedDouble[1] == -.infinity)
        #expect(
            message.repeatedDouble[2] == 1e308 && message.repeatedDouble[3].sign == .minus
                && message.repeatedDouble[4] == 3)
    }

    @Test func bytesAcceptBothAlphabetsWithOrWithoutPadding() throws {
        let message = try CodecFixture.message(
            #"{"repeatedBytes": ["+/8=", "-_8", "-_8=", "+/8", "", "AAAA"]}"#, as: AllKinds.self)
        #expect(message.repeatedBytes == [[0xFB, 0xFF], [0xFB, 0xFF], [0xFB, 0xFF], [0xFB, 0xFF], [], [0, 0, 0]])
    }

    @Test func enumsAcceptNamesAndNumbers() throws {
        let message = try CodecFixture.message(
            #"{"colour": 2, "repeatedColour": ["COLOUR_RED", 99, "1"], "maybeColour": "COLOUR_UNSPECIFIED"}"#,
            as: AllKinds.self)
        #expect(message.colour == .green && message.repeatedColour == [.red, .unrecognized(99), .red])
        #expect(message.maybeColour == .unspecified)
    }

    @Test func timestampsAcceptOffsetsAndAnyFractionDigits() throws {
        let cases: [(String, Int64, Int32)] = [
            ("1970-01-01T01:00:00+01:00", 0, 0), ("1970-01-01T00:00:00.1Z", 0, 100_000_000),
            ("1969-12-31T19:00:00.123456789-05:00", 0, 123_456_789),
            ("2024-02-29T12:00:00.12Z", 1_709_208_000, 120_000_000),
            ("0001-01-01T00:00:00Z", -62_135_596_800, 0),
            ("9999-12-31T23:59:59.999999999Z", 253_402_300_799, 999_999_999),
        ]
        for (text, seconds, nanos) in cases {
            let message = try CodecFixture.message(#"{"time": ""# + text + #""}"#, as: AllKinds.self)
            #expect(message.time == Google_Protobuf_Timestamp(seconds: seconds, nanos: nanos), "\(text)")
        }
    }

    @Test func nullLeavesAFieldUnset() throws {
        let message = try CodecFixture.message(
            #"{"int32Value": null, "nested": null, "maybeInt32": null, "choiceText": null, "choiceNumber": 4, "repeatedInt32": null, "labels": null}"#,
            as: AllKinds.self)
        #expect(message.nested == nil && message.maybeInt32 == nil && message.choice == .choiceNumber(4))
        #expect(message.repeatedInt32.isEmpty && message.labels.isEmpty && message.int32Value == 0)
    }

    @Test func presenceFieldsAtTheirDefaultAreKept() throws {
        let message = try CodecFixture.message(
            #"{"maybeInt32": 0, "maybeBool": false, "choiceText": "", "nested": {}}"#, as: AllKinds.self)
        #expect(
            message.maybeInt32 == 0 && message.maybeBool == false && message.choice == .choiceText("")
                && message.nested == Portal_Testing_V1_Nested())
    }

    @Test func mapKeysAreParsedByTheirKind() throws {
        let message = try CodecFixture.message(
            #"{"nestedById": {"-2147483648": {}, "1e1": {"weight": "3"}}}"#, as: AllKinds.self)
        #expect(
            message.nestedByID == [
                Int32.min: Portal_Testing_V1_Nested(), 10: CodecFixture.nested(label: "", weight: 3),
            ])
    }

    @Test func whitespaceAndEscapesAreRead() throws {
        let message = try CodecFixture.message(
            " \n\t{ \"stringValue\" : \"\\u00e9\\ud83c\\udf89\\/\\b\\f\\n\\r\\t\\\"\\\\\" }\r\n", as: AllKinds.self)
        #expect(message.stringValue == "é🎉/\u{8}\u{C}\n\r\t\"\\")
    }

    @Test func aTimestampAloneIsReadFromAString() throws {
        let bytes = try CodecFixture.codec.binary(
            fromJSON: Array(#""1970-01-01T00:00:01.5Z""#.utf8), messageType: "google.protobuf.Timestamp")
        #expect(
            try Google_Protobuf_Timestamp(rpcBytes: bytes) == Google_Protobuf_Timestamp(seconds: 1, nanos: 500_000_000))
    }

    @Test func binaryOutputIsInFieldNumberOrderWithPackedLists() throws {
        let bytes = try CodecFixture.codec.binary(
            fromJSON: Array(#"{"repeatedInt32": [1, 2], "colour": "COLOUR_RED", "int32Value": 3}"#.utf8),
            messageType: CodecFixture.allKinds)
        #expect(bytes == [0x08, 0x03, 0x80, 0x01, 0x01, 0xF2, 0x01, 0x02, 0x01, 0x02])
    }

    @Test func anyIsReadFromItsTypeURLAndFields() throws {
        let status = try CodecFixture.message(
            #"{"details": [{"label": "x", "@type": "type.googleapis.com/portal.testing.v1.Nested"}, "#
                + #"{"@type": "type.googleapis.com/google.protobuf.Timestamp", "value": "1970-01-01T00:00:02Z"}, {}]}"#,
            as: Google_Rpc_Status.self)
        #expect(status.details.count == 3)
        #expect(status.details[0].typeURL == "type.googleapis.com/portal.testing.v1.Nested")
        #expect(
            try Portal_Testing_V1_Nested(rpcBytes: status.details[0].value)
                == CodecFixture.nested(label: "x", weight: 0))
        #expect(
            try Google_Protobuf_Timestamp(rpcBytes: status.details[1].value) == Google_Protobuf_Timestamp(seconds: 2))
        #expect(status.details[2] == Google_Protobuf_Any())
    }
}
