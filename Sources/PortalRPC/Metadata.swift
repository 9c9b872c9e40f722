/// Call metadata: ordered key/value pairs sent as HTTP/2 headers or trailers.
///
/// Keys are lower-case ASCII. Keys ending in `-bin` carry binary values (base64 on the wire);
/// all others carry printable ASCII strings.
public struct Metadata: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    /// One metadata value.
    public enum EntryValue: Sendable, Hashable {
        case string(String)
        case binary([UInt8])
    }

    /// One entry.
    public struct Entry: Sendable, Hashable {
        /// The lower-case key.
        public var key: String
        /// The value.
        public var value: EntryValue
    }

    private var entries: [Entry] = []

    /// Empty metadata.
    public init() {}

    /// Metadata from string pairs, in order.
    public init(dictionaryLiteral elements: (String, String)...) {
        for (key, value) in elements { addString(value, forKey: key) }
    }

    /// Appends a string value.
    public mutating func addString(_ value: String, forKey key: String) {
        entries.append(Entry(key: key.lowercased(), value: .string(value)))
    }

    /// Appends a binary value; the key should end in `-bin`.
    public mutating func addBinary(_ value: [UInt8], forKey key: String) {
        entries.append(Entry(key: key.lowercased(), value: .binary(value)))
    }

    /// Appends one entry.
    public mutating func add(_ entry: Entry) {
        entries.append(entry)
    }

    /// Appends every entry of `other`.
    public mutating func add(contentsOf other: Metadata) {
        entries.append(contentsOf: other.entries)
    }

    /// Removes every value for `key`.
    public mutating func removeAll(forKey key: String) {
        let key = key.lowercased()
        entries.removeAll { $0.key == key }
    }

    /// The first string value for `key`.
    public func firstString(forKey key: String) -> String? {
        let key = key.lowercased()
        for entry in entries where entry.key == key {
            if case .string(let value) = entry.value { return value }
        }
        return nil
    }

    /// The first binary value for `key`.
    public func firstBinary(forKey key: String) -> [UInt8]? {
        let key = key.lowercased()
        for entry in entries where entry.key == key {
            if case .binary(let value) = entry.value { return value }
        }
        return nil
    }

    /// Every string value for `key`, in order.
    public subscript(key: String) -> [String] {
        let key = key.lowercased()
        return entries.compactMap { entry in
            guard entry.key == key, case .string(let value) = entry.value else { return nil }
            return value
        }
    }

    /// The number of entries.
    public var count: Int { entries.count }

    /// Whether there are no entries.
    public var isEmpty: Bool { entries.isEmpty }

    /// Iterates the entries in order.
    public func makeIterator() -> IndexingIterator<[Entry]> { entries.makeIterator() }

    /// Entries as `key: value` pairs, binary values shown by size only.
    public var description: String {
        "["
            + entries.map { entry in
                switch entry.value {
                case .string(let value): "\(entry.key): \(value)"
                case .binary(let value): "\(entry.key): <\(value.count) bytes>"
                }
            }.joined(separator: ", ") + "]"
    }
}
