import Synchronization
import Testing

@testable import PortalAudit

@Suite("Audit chain pipeline: batches of one organization overlap and commit in order")
struct ChainPipelineTests {
    static let stored = ChainHead(sequence: 10, hash: [UInt8](repeating: 7, count: 32))

    /// Chains a batch of `count` events of one organization: its links are just its sequences.
    static func chain(
        _ pipeline: ChainPipeline, _ place: ChainPipeline.Place, _ organizationID: String = "org-1", count: Int64,
        stored: [String: ChainHead] = ["org-1": stored]
    ) -> ChainPipeline.Chained<ClosedRange<Int64>>? {
        pipeline.chain(place, stored: stored) { bases in
            let base = bases[organizationID]!
            let last = base.sequence + count
            return (base.sequence + 1...last, [organizationID: ChainHead(sequence: last, hash: [UInt8(last % 256)])])
        }
    }

    @Test func aBatchFollowsTheOneInFlightAndGoesOnOnceItCommitted() async throws {
        let pipeline = ChainPipeline()
        let first = await pipeline.admit(["org-1"])
        let second = await pipeline.admit(["org-1"])
        let firstChained = try #require(Self.chain(pipeline, first, count: 5))
        let secondChained = try #require(Self.chain(pipeline, second, count: 3))
        #expect(firstChained.links == 11...15)
        #expect(firstChained.bases["org-1"] == Self.stored)
        #expect(secondChained.links == 16...18)
        #expect(secondChained.bases["org-1"] == ChainHead(sequence: 15, hash: [15]))
        #expect(await firstChained.predecessorsCommitted())

        let waiting = Task { await secondChained.predecessorsCommitted() }
        pipeline.leave(first, committed: true)
        #expect(await waiting.value)
        pipeline.leave(second, committed: true)
    }

    @Test func aFailedBatchFailsTheOneAfterItAndTheNextFollowsTheStoredHead() async throws {
        let pipeline = ChainPipeline()
        let first = await pipeline.admit(["org-1"])
        let second = await pipeline.admit(["org-1"])
        _ = try #require(Self.chain(pipeline, first, count: 5))
        let secondChained = try #require(Self.chain(pipeline, second, count: 3))
        pipeline.leave(first, committed: false)
        #expect(await secondChained.predecessorsCommitted() == false)

        let third = await pipeline.admit(["org-1"])
        let thirdChained = try #require(Self.chain(pipeline, third, count: 2))
        #expect(thirdChained.bases["org-1"] == Self.stored)
        #expect(thirdChained.links == 11...12)
        pipeline.leave(second, committed: false)  // the doomed batch leaves after the third chained
        let fourth = await pipeline.admit(["org-1"])  // admitted while the third is in flight
        pipeline.leave(third, committed: true)
        let fourthChained = try #require(Self.chain(pipeline, fourth, count: 1))
        #expect(
            fourthChained.bases["org-1"] == ChainHead(sequence: 12, hash: [12]), "the committed third stays the tail")
        pipeline.leave(fourth, committed: true)
    }

    @Test func aThirdBatchOfAnOrganizationWaitsForAPlaceWhileOthersGoOn() async throws {
        let pipeline = ChainPipeline()
        let first = await pipeline.admit(["org-1"])
        let second = await pipeline.admit(["org-1"])
        let admitted = Atomic<Bool>(false)
        let third = Task {
            let place = await pipeline.admit(["org-1", "org-2"])
            admitted.store(true, ordering: .sequentiallyConsistent)
            return place
        }
        let other = await pipeline.admit(["org-2"])  // another organization is not held up
        try await Task.sleep(for: .milliseconds(100))
        let admittedEarly = admitted.load(ordering: .sequentiallyConsistent)
        #expect(!admittedEarly)
        pipeline.leave(first, committed: true)
        let place = await third.value
        let admittedNow = admitted.load(ordering: .sequentiallyConsistent)
        #expect(admittedNow)
        for place in [second, other, place] { pipeline.leave(place, committed: true) }
    }

    @Test func aPlaceIsChainedOnceAndAnUndecidedBatchIsWaitedForOnlySoLong() async throws {
        let pipeline = ChainPipeline()
        let place = await pipeline.admit(["org-1"])
        #expect(Self.chain(pipeline, place, count: 1) != nil)
        #expect(Self.chain(pipeline, place, count: 1) == nil, "a transaction run again starts over")
        #expect(await BatchOutcome().committed(within: .milliseconds(50)) == false)
        pipeline.leave(place, committed: true)
    }
}
