import Testing

@testable import PortalHTTP2

@Suite("Stream table")
struct StreamTableTests {
    final class Stream {
        let id: Int32
        init(_ id: Int32) { self.id = id }
    }

    @Test func findsStoresAndRemovesStreamsLikeADictionary() {
        var table = StreamTable<Stream>()
        var model: [Int32: Stream] = [:]
        var generator = SplitMix(seed: 7)
        var nextID: Int32 = 1
        for _ in 0..<20_000 {
            switch generator.next() % 10 {
            case 0...3:  // a new stream (odd, increasing, as clients open them)
                let stream = Stream(nextID)
                table[nextID] = stream
                model[nextID] = stream
                nextID += 2
            case 4...6:  // one ends
                guard let id = model.keys.randomElement(using: &generator) else { continue }
                #expect(table.removeValue(forKey: id) === model.removeValue(forKey: id))
            case 7:  // an id never opened, or already closed
                let id = Int32(truncatingIfNeeded: generator.next() % UInt64(nextID + 1)) | 1
                #expect(table[id] === model[id])
            default:
                if let id = model.keys.randomElement(using: &generator) { #expect(table[id] === model[id]) }
            }
            #expect(table.count == model.count)
        }
        for (id, stream) in model { #expect(table[id] === stream) }
        #expect(Set(table.values.map(\.id)) == Set(model.keys))
    }

    @Test func manyOpenStreamsGrowTheTableAndAllLeave() {
        var table = StreamTable<Stream>()
        let ids = Array(stride(from: Int32(1), through: 4001, by: 2))
        for id in ids { table[id] = Stream(id) }
        #expect(table.count == ids.count)
        for id in ids { #expect(table[id]?.id == id) }
        for id in ids.reversed() { table[id] = nil }
        #expect(table.count == 0 && table.values.isEmpty)
        #expect(table[1] == nil)
    }
}

/// A small seeded generator, so a failing sequence can be replayed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
