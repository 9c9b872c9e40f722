import PortalAPI
import PortalProtoJSON
import PortalProtobuf
import PortalRPC

/// The codec over every embedded proto file, and shorthands the tests share.
enum CodecFixture {
    /// A codec built from `ProtoFileRegistry.files`, as the product builds it.
    static let codec: ProtoJSONCodec = {
        do { return try ProtoJSONCodec(files: ProtoFileRegistry.files) } catch { fatalError("\(error)") }
    }()

    static let allKinds = "portal.testing.v1.AllKinds"

    /// The JSON text of a generated message.
    static func json<Message: RPCMessage & ProtoMessage>(_ message: Message) throws -> String {
        String(
            decoding: try codec.json(fromBinary: message.rpcBytes(), messageType: Message.protoMessageName),
            as: UTF8.self)
    }

    /// The JSON text of binary bytes of the named type.
    static func json(binary: [UInt8], type: String = allKinds) throws -> String {
        String(decoding: try codec.json(fromBinary: binary, messageType: type), as: UTF8.self)
    }

    /// A generated message decoded from the binary the codec makes of JSON text.
    static func message<Message: RPCMessage & ProtoMessage>(
        _ json: String, as type: Message.Type = Message.self
    ) throws -> Message {
        try Message(rpcBytes: codec.binary(fromJSON: Array(json.utf8), messageType: Message.protoMessageName))
    }

    /// The description of the error converting JSON text to binary, or nil when it converts.
    static func jsonError(_ json: String, type: String = allKinds) -> String? {
        do {
            _ = try codec.binary(fromJSON: Array(json.utf8), messageType: type)
            return nil
        } catch {
            return error.description
        }
    }

    /// The description of the error converting binary to JSON, or nil when it converts.
    static func binaryError(_ bytes: [UInt8], type: String = allKinds) -> String? {
        do {
            _ = try codec.json(fromBinary: bytes, messageType: type)
            return nil
        } catch {
            return error.description
        }
    }

    /// A message with every field kind set to a value that is not its default.
    static func everyFieldSet() -> Portal_Testing_V1_AllKinds {
        var message = Portal_Testing_V1_AllKinds()
        message.int32Value = Int32.min
        message.int64Value = Int64.min
        message.uint32Value = UInt32.max
        message.uint64Value = UInt64.max
        message.sint32Value = -7
        message.sint64Value = Int64.max
        message.fixed32Value = 0xDEAD_BEEF
        message.fixed64Value = 0xDEAD_BEEF_CAFE_F00D
        message.sfixed32Value = -123_456
        message.sfixed64Value = -123_456_789_012
        message.floatValue = 0.1
        message.doubleValue = -2.25e100
        message.boolValue = true
        message.stringValue = "Grüße, 世界 🎉 \"quoted\" back\\slash \u{1}\n\t"
        message.bytesValue = [0, 1, 2, 0xFB, 0xFF]
        message.colour = .green
        message.nested = nested(label: "inner", weight: 7)
        message.time = Google_Protobuf_Timestamp(seconds: 1_772_719_629, nanos: 5)
        message.maybeInt32 = 0
        message.maybeString = ""
        message.maybeBool = false
        message.maybeColour = .unspecified
        message.maybeBytes = []
        message.repeatedInt32 = [1, -2, Int32.max, Int32.min]
        message.repeatedString = ["a", "", "ccc"]
        message.repeatedBytes = [[1], [], [2, 3]]
        message.repeatedNested = [nested(label: "x", weight: 1), Portal_Testing_V1_Nested()]
        message.repeatedColour = [.red, .unrecognized(99), .unspecified]
        message.repeatedDouble = [0.5, -0.0, .infinity, 1e-300]
        message.labels = ["team": "licensing", "": "empty key", "ключ": "значение"]
        message.nestedByID = [1: nested(label: "one", weight: 1), -5: Portal_Testing_V1_Nested()]
        message.choice = .choiceNested(nested(label: "chosen", weight: 9))
        return message
    }

    /// A `Nested` with the given fields.
    static func nested(label: String, weight: Int64) -> Portal_Testing_V1_Nested {
        var nested = Portal_Testing_V1_Nested()
        nested.label = label
        nested.weight = weight
        return nested
    }
}
