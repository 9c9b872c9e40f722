import PortalAPI
import PortalProtoJSON
import Testing

@Suite("Conversion errors name the field at fault")
struct ConversionErrorTests {
    @Test(arguments: [
        (#"{"bogus": 1}"#, "bogus: unknown field"),
        (#"{"nested": {"bogus": 1}}"#, "nested.bogus: unknown field"),
        (#"{"int32Value": 1, "int32_value": 2}"#, "int32Value: field given more than once"),
        (#"{"choiceText": "a", "choiceNumber": 1}"#, "choiceNumber: choiceText is already set for oneof choice"),
        (#"{"nested": {"weight": 1.5}}"#, "nested.weight: expected an integer, not 1.5"),
        (#"{"int32Value": 2147483648}"#, "int32Value: integer 2147483648 out of range"),
        (#"{"uint32Value": -1}"#, "uint32Value: integer -1 out of range"),
        (#"{"uint64Value": "18446744073709551616"}"#, "uint64Value: integer 18446744073709551616 out of range"),
        (#"{"int64Value": "12 "}"#, #"int64Value: expected an integer, not "12 ""#),
        (#"{"int64Value": true}"#, "int64Value: expected an integer, not a boolean"),
        (#"{"boolValue": "true"}"#, "boolValue: expected true or false, not a string"),
        (#"{"stringValue": 5}"#, "stringValue: expected a string, not a number"),
        (#"{"bytesValue": "a*b="}"#, "bytesValue: expected base64 text"),
        (#"{"bytesValue": "A"}"#, "bytesValue: expected base64 text"),
        (#"{"floatValue": 1e39}"#, "floatValue: 1e+39 is out of range for a float"),
        (#"{"doubleValue": 1e400}"#, "doubleValue: number 1e400 out of range"),
        (#"{"doubleValue": "nan"}"#, #"doubleValue: expected a number, not "nan""#),
        (#"{"colour": "PURPLE"}"#, #"colour: unknown value "PURPLE" for enum portal.testing.v1.Colour"#),
        (
            #"{"repeatedColour": ["COLOUR_RED", "PURPLE"]}"#,
            #"repeatedColour[1]: unknown value "PURPLE" for enum portal.testing.v1.Colour"#
        ),
        (#"{"time": "yesterday"}"#, "time: expected an RFC 3339 timestamp"),
        (#"{"time": "2023-02-29T00:00:00Z"}"#, "time: expected an RFC 3339 timestamp"),
        (
            #"{"time": "2023-01-01T00:00:00.1234567891Z"}"#,
            "time: expected an RFC 3339 timestamp with at most nine fractional digits"
        ),
        (#"{"time": "0001-01-01T00:00:00+00:01"}"#, "time: timestamp out of range (0001-01-01 to 9999-12-31)"),
        (#"{"time": 5}"#, "time: expected an RFC 3339 timestamp, not a number"),
        (#"{"repeatedNested": [{}, {"label": 3}]}"#, "repeatedNested[1].label: expected a string, not a number"),
        (#"{"repeatedInt32": 3}"#, "repeatedInt32: expected an array, not a number"),
        (#"{"repeatedInt32": [null]}"#, "repeatedInt32[0]: null is not a valid list element"),
        (#"{"labels": {"x": 3}}"#, #"labels["x"]: expected a string, not a number"#),
        (#"{"labels": {"x": null}}"#, #"labels["x"]: null is not a valid map value"#),
        (#"{"nestedById": {"one": {}}}"#, #"nestedById["one"]: invalid map key: expected an integer, not "one""#),
        (#"{"nestedById": {"1": {"weight": "x"}}}"#, #"nestedById["1"].weight: expected an integer, not "x""#),
        (#"{"nested": []}"#, "nested: expected an object, not an array"),
        (#"{"labels": {"x": "1", "x": "2"}}"#, "labels.x: duplicate key"),
    ])
    func jsonInputErrors(json: String, expected: String) {
        #expect(CodecFixture.jsonError(json) == expected)
    }

    @Test(arguments: [
        (
            #"{"details": [{"@type": "type.googleapis.com/nope.Nope"}]}"#,
            #"details[0].@type: unknown message type "type.googleapis.com/nope.Nope""#
        ),
        (#"{"details": [{"label": "x"}]}"#, #"details[0]: missing "@type""#),
        (#"{"details": [{"@type": "x/portal.testing.v1.Nested", "bogus": 1}]}"#, "details[0].bogus: unknown field"),
        (
            #"{"details": [{"@type": "x/google.protobuf.Timestamp", "value": "then"}]}"#,
            "details[0].value: expected an RFC 3339 timestamp"
        ),
    ])
    func anyInputErrors(json: String, expected: String) {
        #expect(CodecFixture.jsonError(json, type: "google.rpc.Status") == expected)
    }

    @Test(arguments: [
        (#"{"int32Value": 1,}"#, ""), (#"{"int32Value": 01}"#, ""), ("{/* no */}", ""), (#"{'a': 1}"#, ""),
        (#"{"int32Value": 1} {}"#, ""),
        ("", ""), (#"{"int32Value": NaN}"#, "int32Value: "), ("{\"stringValue\": \"a\u{1}\"}", "stringValue: "),
        (#"{"stringValue": "\ud800"}"#, "stringValue: "), (#"{"int32Value": +1}"#, "int32Value: "),
        (#"{"nested": {"weight": .5}}"#, "nested.weight: "),
        (#"{"repeatedInt32": [1, 2,]}"#, "repeatedInt32[2]: "),
    ])
    func malformedJSONIsRefusedNamingWhereItWas(json: String, path: String) {
        #expect(CodecFixture.jsonError(json)?.hasPrefix(path + "invalid JSON at byte ") == true, "\(json)")
    }

    @Test func invalidUTF8InJSONIsRefused() {
        #expect(throws: ProtoJSONError.self) {
            try CodecFixture.codec.binary(
                fromJSON: [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D], messageType: CodecFixture.allKinds)
        }
    }

    @Test func nestingDeeperThanOneHundredIsRefused() {
        let deep =
            String(repeating: #"{"nested":"#, count: 1) + String(repeating: "[", count: 100)
            + String(repeating: "]", count: 100) + "}"
        #expect(CodecFixture.jsonError(deep)?.contains("nested more than 100 deep") == true)
        let allowed = String(repeating: "[", count: 99) + String(repeating: "]", count: 99)
        #expect(CodecFixture.jsonError(#"{"repeatedInt32":"# + allowed + "}")?.contains("nested more than") == false)
    }

    @Test func theTopLevelMustBeAnObject() {
        #expect(CodecFixture.jsonError("[]") == "expected an object, not an array")
        #expect(CodecFixture.jsonError("null") == "expected an object, not null")
    }

    @Test func anUnknownMessageTypeIsAnError() {
        #expect(CodecFixture.jsonError("{}", type: "portal.nope.Nope") == "unknown message type portal.nope.Nope")
        #expect(CodecFixture.binaryError([], type: "portal.nope.Nope") == "unknown message type portal.nope.Nope")
    }

    @Test(arguments: [
        ([0x8A, 0x01, 0x03, 0x0A, 0x01, 0xFF] as [UInt8], "nested.label: invalid UTF-8 in a string"),
        ([0xFA, 0x01, 0x01, 0x61, 0xFA, 0x01, 0x01, 0xC0], "repeatedString[1]: invalid UTF-8 in a string"),
        ([0xC2, 0x02, 0x03, 0x0A, 0x01, 0xFF], "labels: invalid UTF-8 in a map key"),
        (
            [0x92, 0x01, 0x06, 0x10, 0x80, 0x94, 0xEB, 0xDC, 0x03],
            "time: timestamp out of range (seconds 0, nanos 1000000000)"
        ),
        ([0x0A, 0x05, 0x61], "truncated length-delimited value"),
        ([0x8A, 0x01, 0x03, 0x0A, 0x09, 0x00], "nested: truncated length-delimited value"),
        ([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], "varint longer than ten bytes"),
        ([0x0F], "invalid wire type 7"),
        ([0x00], "invalid field number 0"),
    ])
    func binaryInputErrors(bytes: [UInt8], expected: String) {
        #expect(CodecFixture.binaryError(bytes) == expected)
    }

    @Test func aTimestampOutOfRangeIsAnError() {
        var message = Portal_Testing_V1_AllKinds()
        message.time = Google_Protobuf_Timestamp(seconds: 253_402_300_800, nanos: 0)
        #expect(
            CodecFixture.binaryError(message.rpcBytes())
                == "time: timestamp out of range (seconds 253402300800, nanos 0)")
    }

    @Test func anAnyOfAnUnknownTypeIsAnError() {
        var any = Google_Protobuf_Any()
        any.typeURL = "type.googleapis.com/nope.Nope"
        var status = Google_Rpc_Status()
        status.details = [Google_Protobuf_Any(), any]
        #expect(
            CodecFixture.binaryError(status.rpcBytes(), type: "google.rpc.Status")
                == #"details[1].@type: unknown message type "type.googleapis.com/nope.Nope""#)
    }

    @Test func messagesNestedTooDeeplyOnTheWireAreRefused() {
        // Status.details[0] = Any{type_url: .../google.rpc.Status, value: Status{...}}, 120 levels deep.
        let url = Array("type.googleapis.com/google.rpc.Status".utf8)
        var bytes: [UInt8] = []
        for _ in 0..<120 {
            let any = [0x0A, UInt8(url.count)] + url + [0x12] + varint(bytes.count) + bytes
            bytes = [0x1A] + varint(any.count) + any
        }
        #expect(
            CodecFixture.binaryError(bytes, type: "google.rpc.Status")?.contains("nested more than 100 deep") == true)
    }

    private func varint(_ value: Int) -> [UInt8] {
        var rest = UInt64(value)
        var bytes: [UInt8] = []
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        return bytes + [UInt8(rest)]
    }
}
