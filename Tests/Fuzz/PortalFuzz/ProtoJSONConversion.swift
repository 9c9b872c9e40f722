import PortalAPI
import PortalProtoJSON

/// The JSON codec the web listener runs on every browser request: input is a message type's full
/// name, a newline, then a mode byte and the payload. JSON (mode even) that converts must convert back
/// from its binary and then to the same binary; binary (mode odd) that converts must come back through
/// its JSON to the same JSON. Query parameters (mode multiple of 4, the payload as `a=b&c=d`) must
/// not crash.
enum ProtoJSONConversion {
    static let codec: ProtoJSONCodec = {
        do {
            return try ProtoJSONCodec(files: ProtoFileRegistry.files)
        } catch {
            fatalError("the embedded descriptors do not load: \(error)")
        }
    }()

    static func run(_ input: [UInt8]) {
        guard let newline = input.firstIndex(of: 0x0A), newline + 1 < input.count else { return }
        let type = String(decoding: input[..<newline], as: UTF8.self)
        let mode = input[newline + 1]
        let payload = Array(input[(newline + 2)...])
        if mode % 4 == 0 {
            let pairs = String(decoding: payload, as: UTF8.self).split(separator: "&").map { pair in
                let parts = pair.split(separator: "=", maxSplits: 1)
                return (name: String(parts.first ?? ""), value: parts.count > 1 ? String(parts[1]) : "")
            }
            _ = try? codec.binary(fromQuery: pairs, messageType: type)
        } else if mode % 2 == 0 {
            guard let binary = try? codec.binary(fromJSON: payload, messageType: type) else { return }
            guard let json = try? codec.json(fromBinary: binary, messageType: type) else {
                fatalError("\(type): the binary made from JSON does not convert back")
            }
            guard let again = try? codec.binary(fromJSON: json, messageType: type) else {
                fatalError("\(type): the codec's own JSON does not convert")
            }
            // Re-encoding normalises (field order, packing), so compare from the second pass on.
            require(
                (try? codec.json(fromBinary: again, messageType: type)) == json,
                "\(type): JSON is not stable across a round trip")
        } else {
            guard let json = try? codec.json(fromBinary: payload, messageType: type) else { return }
            guard let binary = try? codec.binary(fromJSON: json, messageType: type) else {
                fatalError("\(type): the codec's own JSON does not convert")
            }
            require(
                (try? codec.json(fromBinary: binary, messageType: type)) == json,
                "\(type): JSON is not stable across a round trip")
        }
    }
}
