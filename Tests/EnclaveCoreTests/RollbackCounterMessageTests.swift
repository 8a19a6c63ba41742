import EnclaveCore
import Testing

/// The rollback counter's two signed messages, pinned byte for byte. The expected bytes were computed apart from
/// the code, in Python from the documented layout:
///
/// ```python
/// f = lambda s: struct.pack('>I', len(s.encode())) + s.encode()
/// increment = b"EnclaveKit.counter.increment.v1\x00" + f(c) + struct.pack('>Q', e) + f(s) + f(n)
/// answer = f"EnclaveKit.rollbackCounter.v1\ncontract={c}\nvalue={v}\nstate={s}\nnonce={n}".encode()
/// ```
@Suite("RollbackCounterMessage: the counter's signed messages, byte for byte")
struct RollbackCounterMessageTests {
    @Test func theIncrementMessageIsItsDocumentedLayout() {
        let message = RollbackCounterMessage.increment(
            contract: "c0ffee",
            expected: 0x0102_0304_0506_0708,
            state: "",
            nonce: "é😀"
        )
        let expected = [
            "456e636c6176654b69742e636f756e7465722e696e6372656d656e742e7631",  // EnclaveKit.counter.increment.v1
            "00",  // the domain's end
            "00000006", "633066666565",  // contract: 6 bytes, "c0ffee"
            "0102030405060708",  // expected, big-endian
            "00000000",  // state: empty
            "00000006", "c3a9f09f9880",  // nonce: "é" (2 bytes) and "😀" (4 bytes) in UTF-8
        ].joined()
        #expect(Hex.encode(message) == expected)
        #expect(message.count == 31 + 1 + 4 + 6 + 8 + 4 + 0 + 4 + 6)
    }

    @Test func theAnswerMessageIsItsDocumentedLayout() {
        let message = RollbackCounterMessage.answer(contract: "ab", value: .max, state: "", nonce: "né")
        let expected = [
            "456e636c6176654b69742e726f6c6c6261636b436f756e7465722e7631",  // EnclaveKit.rollbackCounter.v1
            "0a", "636f6e74726163743d6162",  // \ncontract=ab
            "0a", "76616c75653d3138343436373434303733373039353531363135",  // \nvalue=18446744073709551615
            "0a", "73746174653d",  // \nstate= (empty)
            "0a", "6e6f6e63653d6ec3a9",  // \nnonce=né, no line break at the end
        ].joined()
        #expect(Hex.encode(message) == expected)
        let zero = RollbackCounterMessage.answer(contract: "ab", value: 0, state: "", nonce: "")
        #expect(
            Hex.encode(zero)
                == "456e636c6176654b69742e726f6c6c6261636b436f756e7465722e76310a636f6e74726163743d61620a"
                + "76616c75653d300a73746174653d0a6e6f6e63653d"
        )
    }

    @Test func theIncrementMessagesOfTwoFieldSplitsDiffer() {
        // The same characters split differently between fields: the length prefixes tell them apart.
        let splits: [(contract: String, state: String, nonce: String)] = [
            ("ab", "c", "d"), ("a", "bc", "d"), ("a", "b", "cd"), ("", "abc", "d"), ("abcd", "", ""), ("", "", "abcd"),
        ]
        // Without the lengths they would be one message: the fields run together as the same text.
        #expect(Set(splits.map { $0.contract + $0.state + $0.nonce }) == ["abcd"])
        let messages = splits.map {
            RollbackCounterMessage.increment(contract: $0.contract, expected: 7, state: $0.state, nonce: $0.nonce)
        }
        #expect(Set(messages).count == splits.count)
        // Neither message can stand for the other.
        #expect(
            RollbackCounterMessage.increment(contract: "c", expected: 7, state: "s", nonce: "n")
                != RollbackCounterMessage.answer(contract: "c", value: 7, state: "s", nonce: "n")
        )
    }
}
