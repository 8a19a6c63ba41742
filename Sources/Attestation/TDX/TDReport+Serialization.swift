extension TDReport {
    /// The encoding of the fields: a TD 1.0 report body, or TD 1.5 with ``teeTCBSVN2`` and ``mrServiceTD``. Equal
    /// to ``bytes`` for every parsed value (a TD report body has no reserved fields).
    public func serialized() -> [UInt8] {
        var bytes = teeTCBSVN + mrSeam + mrSignerSeam + seamAttributes + tdAttributes + xfam + mrTD + mrConfigID
        bytes += mrOwner + mrOwnerConfig + rtmrs.joined() + reportData
        if let teeTCBSVN2, let mrServiceTD { bytes += teeTCBSVN2 + mrServiceTD }
        return bytes
    }
}
