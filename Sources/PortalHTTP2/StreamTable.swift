/// A connection's open streams by stream id: open addressing on the id's own bits, so finding a
/// stream costs a mask and a comparison instead of hashing the id (a dictionary's SipHash was a
/// measurable share of a unary call, whose stream the connection and the session look up about a
/// dozen times between them).
///
/// Client-initiated stream ids are odd and increase, so consecutive streams land in consecutive slots.
struct StreamTable<Value> {
    /// Slot ids; 0 (never a stream id) marks an empty slot.
    private var ids: [Int32]
    private var slots: [Value?]
    /// Streams in the table.
    private(set) var count = 0

    /// An empty table.
    init() {
        ids = Array(repeating: 0, count: 16)
        slots = Array(repeating: nil, count: 16)
    }

    private var mask: Int { ids.count - 1 }

    private func home(of id: Int32) -> Int {
        Int(truncatingIfNeeded: UInt32(bitPattern: id) >> 1) & mask
    }

    /// The slot holding `id`, or nil.
    private func slot(of id: Int32) -> Int? {
        var index = home(of: id)
        while true {
            let found = ids[index]
            if found == id { return index }
            if found == 0 { return nil }
            index = (index + 1) & mask
        }
    }

    /// The stream with `id`; setting nil removes it.
    subscript(id: Int32) -> Value? {
        get {
            slot(of: id).flatMap { slots[$0] }
        }
        set {
            if let newValue { insert(newValue, for: id) } else { removeValue(forKey: id) }
        }
    }

    /// Runs `body` on `id`'s stream in place (its buffers are not copied to be changed); nil
    /// when there is none.
    mutating func update<Result>(_ id: Int32, _ body: (inout Value) -> Result) -> Result? {
        guard let index = slot(of: id) else { return nil }
        return body(&slots[index]!)
    }

    /// Runs `body` on `id`'s stream in place, first adding `make()` when there is none.
    mutating func update<Result>(
        _ id: Int32, orAdd make: @autoclosure () -> Value, _ body: (inout Value) -> Result
    ) -> Result {
        let index = slot(of: id) ?? insert(make(), for: id)
        return body(&slots[index]!)
    }

    /// The open streams, in no particular order.
    var values: [Value] {
        slots.compactMap { $0 }
    }

    /// The open streams with their ids, in no particular order.
    var entries: [(id: Int32, value: Value)] {
        zip(ids, slots).compactMap { id, value in value.map { (id, $0) } }
    }

    /// Removes `id`'s stream and returns it.
    @discardableResult
    mutating func removeValue(forKey id: Int32) -> Value? {
        guard var hole = slot(of: id) else { return nil }
        let removed = slots[hole]
        count -= 1
        ids[hole] = 0
        slots[hole] = nil
        // Backward-shift deletion: move later entries of the probe run into the hole when their
        // home slot lies at or before it, so no lookup meets an empty slot too early.
        var index = (hole + 1) & mask
        while ids[index] != 0 {
            let home = home(of: ids[index])
            if (index - home) & mask >= (index - hole) & mask {
                ids[hole] = ids[index]
                slots[hole] = slots[index]
                ids[index] = 0
                slots[index] = nil
                hole = index
            }
            index = (index + 1) & mask
        }
        return removed
    }

    /// Empties the table.
    mutating func removeAll() {
        self = StreamTable()
    }

    @discardableResult
    private mutating func insert(_ value: Value, for id: Int32) -> Int {
        precondition(id > 0, "stream ids are positive")
        if let existing = slot(of: id) {
            slots[existing] = value
            return existing
        }
        if (count + 1) * 4 > ids.count * 3 { grow() }
        var index = home(of: id)
        while ids[index] != 0 { index = (index + 1) & mask }
        ids[index] = id
        slots[index] = value
        count += 1
        return index
    }

    private mutating func grow() {
        let entries = zip(ids, slots).filter { $0.0 != 0 }
        ids = Array(repeating: 0, count: ids.count * 2)
        slots = Array(repeating: nil, count: ids.count)
        count = 0
        for (id, value) in entries { insert(value!, for: id) }
    }
}
