import PortalAPI
import PortalProtoJSON
import PortalRPC
import Testing

@Suite("The codec reads its schema from file descriptors")
struct SchemaTests {
    @Test func methodsAreFoundByTheirPath() throws {
        let expand = try #require(CodecFixture.codec.method(path: "/portal.testing.v1.Echo/Expand"))
        #expect(expand.path == "/portal.testing.v1.Echo/Expand")
        #expect(
            expand.inputType == "portal.testing.v1.EchoRequest" && expand.outputType == "portal.testing.v1.EchoResponse"
        )
        #expect(!expand.clientStreaming && expand.serverStreaming && !expand.hasNoSideEffects)
        let update = try #require(CodecFixture.codec.method(path: "/portal.testing.v1.Echo/Update"))
        #expect(update.clientStreaming && update.serverStreaming)
        #expect(CodecFixture.codec.method(path: "/portal.testing.v1.Echo/Nope") == nil)
        #expect(CodecFixture.codec.method(path: "portal.testing.v1.Echo/Get") == nil)
    }

    @Test func everyEmbeddedMessageTypeConvertsItsEmptyMessage() throws {
        for file in ProtoFileRegistry.files {
            for symbol in file.symbols {
                guard let json = try? CodecFixture.codec.json(fromBinary: [], messageType: symbol) else { continue }
                let expected = symbol == "google.protobuf.Timestamp" ? #""1970-01-01T00:00:00Z""# : "{}"
                #expect(String(decoding: json, as: UTF8.self) == expected, "\(symbol)")
                #expect(try CodecFixture.codec.binary(fromJSON: json, messageType: symbol).isEmpty, "\(symbol)")
            }
        }
    }

    @Test func handMadeDescriptorsAreRead() throws {
        let codec = try ProtoJSONCodec(files: [Self.demoFile()])
        let list = try #require(codec.method(path: "/demo.Things/List"))
        #expect(list.hasNoSideEffects && list.inputType == "demo.Thing" && list.outputType == "demo.Thing.Part")
        #expect(try #require(codec.method(path: "/demo.Things/Put")).hasNoSideEffects == false)
        // No json_name in the descriptor: computed as protoc does. proto2 `optional` has presence.
        let bytes = try codec.binary(
            fromJSON: Array(#"{"some_count": 0, "partList": [{"x_y_z": true}]}"#.utf8), messageType: "demo.Thing")
        #expect(
            String(decoding: try codec.json(fromBinary: bytes, messageType: "demo.Thing"), as: UTF8.self)
                == #"{"someCount":0,"partList":[{"xYZ":true}]}"#)
    }

    @Test func filesWithUnsupportedOrMissingTypesAreRefused() {
        var duration = DescriptorBytes()
        duration.string(1, "google/protobuf/duration.proto")
        duration.string(2, "google.protobuf")
        duration.message(4) { $0.string(1, "Duration") }
        duration.string(12, "proto3")
        #expect(throws: ProtoJSONError.self) {
            try ProtoJSONCodec(files: [duration.file(named: "google/protobuf/duration.proto")])
        }

        var dangling = DescriptorBytes()
        dangling.string(2, "demo")
        dangling.message(4) { message in
            message.string(1, "Holder")
            message.field("missing", number: 1, type: 11, typeName: ".demo.Missing")
        }
        #expect {
            try ProtoJSONCodec(files: [dangling.file(named: "dangling.proto")])
        } throws: { error in
            (error as? ProtoJSONError)?.description == "demo.Holder.missing: type .demo.Missing not defined"
        }
        #expect(throws: ProtoJSONError.self) {
            try ProtoJSONCodec(files: [
                ProtoFileDescriptor(name: "junk.proto", dependencies: [], services: [], symbols: [], base64: "/////w")
            ])
        }
    }

    /// A proto2 file `demo` with `Thing { optional int32 some_count = 1; repeated Part part_list = 2; message
    /// Part { optional bool x_y_z = 1; } }`
    /// and a service whose `List` method has no side effects.
    static func demoFile() -> ProtoFileDescriptor {
        var file = DescriptorBytes()
        file.string(1, "demo.proto")
        file.string(2, "demo")
        file.message(4) { message in
            message.string(1, "Thing")
            message.field("some_count", number: 1, type: 5)
            message.field("part_list", number: 2, type: 11, label: 3, typeName: ".demo.Thing.Part")
            message.message(3) { part in
                part.string(1, "Part")
                part.field("x_y_z", number: 1, type: 8)
            }
        }
        file.message(6) { service in
            service.string(1, "Things")
            service.message(2) { method in
                method.string(1, "List")
                method.string(2, ".demo.Thing")
                method.string(3, ".demo.Thing.Part")
                method.message(4) { $0.varint(34, 1) }
            }
            service.message(2) { method in
                method.string(1, "Put")
                method.string(2, ".demo.Thing")
                method.string(3, ".demo.Thing")
                method.message(4) { $0.varint(34, 2) }
            }
        }
        return file.file(named: "demo.proto")
    }
}
