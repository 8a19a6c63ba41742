internal import AttestationAPI

extension KeyBrokerRefusalCount {
    /// `counts` with those of one minute, key and code added up (one row each, in first-seen order).
    static func aggregated(_ counts: [KeyBrokerRefusalCount]) -> [KeyBrokerRefusalCount] {
        var index: [KeyBrokerRefusalCount: Int] = [:]
        var result: [KeyBrokerRefusalCount] = []
        for count in counts {
            let slot = KeyBrokerRefusalCount(minute: count.minute, key: count.key, code: count.code, count: 0)
            if let at = index[slot] {
                result[at].count += count.count
            } else {
                index[slot] = result.count
                result.append(count)
            }
        }
        return result
    }
}
