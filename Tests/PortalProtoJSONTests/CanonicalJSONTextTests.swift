import PortalAPI
import Testing

@Suite("Binary messages become canonical proto3 JSON")
struct CanonicalJSONTextTests {
    typealias AllKinds = Portal_Testing_V1_AllKinds

    @Test func scalarsUseTheirCanonicalSpelling() throws {
        var message = AllKinds()
        message.int32Value = -5
        message.int64Value = Int64.min
        message.uint32Value = UInt32.max
        message.uint64Value = UInt64.max
        message.sint32Value = Int32.min
        message.sint64Value = -2
        message.fixed32Value = 7
        message.fixed64Value = 8
        message.sfixed32Value = -9
        message.sfixed64Value = -10
        message.floatValue = 0.1
        message.doubleValue = 1
        message.boolValue = true
        message.colour = .red
        #expect(
            try CodecFixture.json(message)
                == #"{"int32Value":-5,"int64Value":"-9223372036854775808","uint32Value":4294967295,"uint64Value":"18446744073709551615","#
                + #""sint32Value":-2147483648,"sint64Value":"-2","fixed32Value":7,"fixed64Value":"8","sfixed32Value":-9,"#
                + #""sfixed64Value":"-10","floatValue":0.1,"doubleValue":1.0,"boolValue":true,"colour":"COLOUR_RED"}"#)
    }

    @Test func nonFiniteFloatsAreNamed() throws {
        var message = AllKinds()
        message.floatValue = .nan
        message.doubleValue = -.infinity
        message.repeatedDouble = [.infinity, -0.0, 5e-324]
        #expect(
            try CodecFixture.json(message)
                == #"{"floatValue":"NaN","doubleValue":"-Infinity","repeatedDouble":["Infinity",-0.0,5e-324]}"#)
    }

    @Test func stringsAreEscapedAndBytesAreStandardBase64() throws {
        var message = AllKinds()
        message.stringValue = "a\"b\\c\n\u{1}\u{1F}é🎉/"
        message.bytesValue = [0xFB, 0xFF]
        message.repeatedBytes = [[], [0], [0, 0], [0, 0, 0]]
        #expect(
            try CodecFixture.json(message)
                == #"{"stringValue":"a\"b\\c\n\u0001\u001fé🎉/","bytesValue":"+/8=","repeatedBytes":["","AA==","AAA=","AAAA"]}"#
        )
    }

    @Test func fieldsWithPresenceAppearAtTheirDefault() throws {
        var message = AllKinds()
        message.maybeInt32 = 0
        message.maybeString = ""
        message.maybeBool = false
        message.maybeColour = .unspecified
        message.maybeBytes = []
        message.nested = Portal_Testing_V1_Nested()
        message.choice = .choiceNumber(0)
        #expect(
            try CodecFixture.json(message)
                == #"{"nested":{},"maybeInt32":0,"maybeString":"","maybeBool":false,"maybeColour":"COLOUR_UNSPECIFIED","maybeBytes":"","choiceNumber":"0"}"#
        )
    }

    @Test func defaultsOnTheWireAreOmittedForFieldsWithoutPresence() throws {
        // int32_value = 0, string_value = "", colour = 0, each written explicitly
        #expect(try CodecFixture.json(binary: [0x08, 0x00, 0x72, 0x00, 0x80, 0x01, 0x00]) == "{}")
    }

    @Test func timestampsUseZeroThreeSixOrNineFractionDigits() throws {
        let expected: [(Int64, Int32, String)] = [
            (0, 0, "1970-01-01T00:00:00Z"), (1, 5_000_000, "1970-01-01T00:00:01.005Z"),
            (-1, 5_000, "1969-12-31T23:59:59.000005Z"), (1_709_251_199, 5, "2024-02-29T23:59:59.000000005Z"),
            (-62_135_596_800, 0, "0001-01-01T00:00:00Z"),
            (253_402_300_799, 999_999_999, "9999-12-31T23:59:59.999999999Z"),
        ]
        for (seconds, nanos, text) in expected {
            var message = AllKinds()
            message.time = Google_Protobuf_Timestamp(seconds: seconds, nanos: nanos)
            #expect(try CodecFixture.json(message) == #"{"time":""# + text + #""}"#)
        }
    }

    @Test func mapsAreObjectsInKeyOrder() throws {
        var message = AllKinds()
        message.labels = ["b": "2", "a": "1", "": "0"]
        message.nestedByID = [
            10: CodecFixture.nested(label: "ten", weight: 0), -5: Portal_Testing_V1_Nested(),
            2: Portal_Testing_V1_Nested(),
        ]
        #expect(
            try CodecFixture.json(message)
                == #"{"labels":{"":"0","a":"1","b":"2"},"nestedById":{"-5":{},"2":{},"10":{"label":"ten"}}}"#)
    }

    @Test func unknownEnumNumbersAreWrittenAsNumbers() throws {
        var message = AllKinds()
        message.colour = .unrecognized(99)
        message.repeatedColour = [.green, .unrecognized(-3)]
        #expect(try CodecFixture.json(message) == #"{"colour":99,"repeatedColour":["COLOUR_GREEN",-3]}"#)
    }

    @Test func anyHoldsItsTypeURLAndFields() throws {
        var status = Google_Rpc_Status()
        var nested = Google_Protobuf_Any()
        nested.typeURL = "type.googleapis.com/portal.testing.v1.Nested"
        nested.value = CodecFixture.nested(label: "x", weight: 2).rpcBytes()
        var time = Google_Protobuf_Any()
        time.typeURL = "type.googleapis.com/google.protobuf.Timestamp"
        time.value = Google_Protobuf_Timestamp(seconds: 0, nanos: 0).rpcBytes()
        status.details = [nested, time, Google_Protobuf_Any()]
        #expect(
            try CodecFixture.json(status)
                == #"{"details":[{"@type":"type.googleapis.com/portal.testing.v1.Nested","label":"x","weight":"2"},"#
                + #"{"@type":"type.googleapis.com/google.protobuf.Timestamp","value":"1970-01-01T00:00:00Z"},{}]}"#)
    }

    @Test func aTimestampAloneIsAString() throws {
        let bytes = Google_Protobuf_Timestamp(seconds: 86_400, nanos: 120_000_000).rpcBytes()
        #expect(
            try CodecFixture.json(binary: bytes, type: "google.protobuf.Timestamp") == #""1970-01-02T00:00:00.120Z""#)
    }

    @Test func wireRulesApply() throws {
        // Unknown fields 9 (varint) and 10 (bytes) are skipped.
        #expect(
            try CodecFixture.json(
                binary: [0x0A, 0x01, 0x61, 0x48, 0x05, 0x52, 0x02, 0x7A, 0x7A], type: "portal.testing.v1.Nested")
                == #"{"label":"a"}"#)
        // repeated_int32 unpacked (1, 2) then packed (3): one list.
        #expect(
            try CodecFixture.json(binary: [0xF0, 0x01, 0x01, 0xF0, 0x01, 0x02, 0xF2, 0x01, 0x01, 0x03])
                == #"{"repeatedInt32":[1,2,3]}"#)
        // int32_value 1 then 2: the last wins.
        #expect(try CodecFixture.json(binary: [0x08, 0x01, 0x08, 0x02]) == #"{"int32Value":2}"#)
        // nested {label "a"} then nested {weight 2}: merged.
        #expect(
            try CodecFixture.json(binary: [0x8A, 0x01, 0x03, 0x0A, 0x01, 0x61, 0x8A, 0x01, 0x02, 0x10, 0x02])
                == #"{"nested":{"label":"a","weight":"2"}}"#)
        // choice_text "a" then choice_number 3: only the last member remains.
        #expect(try CodecFixture.json(binary: [0x92, 0x03, 0x01, 0x61, 0x98, 0x03, 0x03]) == #"{"choiceNumber":"3"}"#)
        // labels {"k": "1"} then {"k": "2"}: the last entry wins.
        let entry1: [UInt8] = [0xC2, 0x02, 0x06, 0x0A, 0x01, 0x6B, 0x12, 0x01, 0x31]
        let entry2: [UInt8] = [0xC2, 0x02, 0x06, 0x0A, 0x01, 0x6B, 0x12, 0x01, 0x32]
        #expect(try CodecFixture.json(binary: entry1 + entry2) == #"{"labels":{"k":"2"}}"#)
        // a map entry without its value: the value's default.
        #expect(try CodecFixture.json(binary: [0xCA, 0x02, 0x02, 0x08, 0x07]) == #"{"nestedById":{"7":{}}}"#)
    }
}
