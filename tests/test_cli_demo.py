"""``cx`` and ``cx demo``: the simulated market trades, the book stays sound, the view reads right.

Everything runs for real: the simulated flow through a real book, the real CLI parser, the
real renderer. Nothing here asserts how fast anything is.
"""

from __future__ import annotations

import os
import re
import signal
import threading

import pytest
from rich.console import Console

from cx.book_demo.demo import DemoSession
from cx.book_demo.flow import demo_instruments
from cx.book_demo.view import depth_bar, render
from cx.cli import main
from exchange.money import format_price, format_units, format_usdc

NOW = 1_796_083_200_000_000_000  # 2026-12-01T00:00Z in ns: a fixed clock for repeatable runs
PRICE = re.compile(r"\b\d+\.\d{3}\b")


BOOKS = [pytest.param(True, id="reference"), pytest.param(False, id="fast")]


def _run(session: DemoSession, batches: int) -> None:
    for i in range(batches):
        session.step(NOW + i * 125_000_000)


def _text(renderable: object, width: int = 100) -> str:
    console = Console(record=True, width=width, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


@pytest.mark.parametrize("reference", BOOKS)
def test_book_stays_uncrossed_while_the_flow_trades(reference: bool) -> None:
    session = DemoSession(instruments=3, seed=11, batch=2000, reference=reference)
    for i in range(12):
        session.step(NOW + i * 125_000_000)
        for instrument in range(3):
            bid, bid_qty, ask, ask_qty = session.book.best_bid_offer(instrument)
            assert bid and ask and bid_qty > 0 and ask_qty > 0, "makers keep both sides quoted"
            assert bid < ask, f"crossed book on instrument {instrument}: {bid} >= {ask}"
        # The makers track their quotes from events alone; the book must agree.
        assert session.flow.open_quotes == session.book.open_order_count()

    totals = session.tape.totals
    assert totals.commands == 12 * 2000
    assert totals.trades > 0
    assert all(session.tape.trade_count > 0), "every instrument traded"
    assert totals.commands_rejected < totals.commands // 5
    assert totals.orders_rejected < totals.commands // 5


def test_same_seed_same_market() -> None:
    """The flow is seeded and the book deterministic: a run is reproducible from its seed."""
    hashes = []
    for seed in (5, 5, 6):
        session = DemoSession(instruments=2, seed=seed, batch=1500, reference=True)
        _run(session, 6)
        hashes.append(session.book.state_hash())
    assert hashes[0] == hashes[1]
    assert hashes[0] != hashes[2]


def test_both_books_see_the_same_market() -> None:
    """The demo's flow, command for command, through both books: identical event streams."""
    fast = DemoSession(instruments=3, seed=3, batch=2000, reference=False)
    ref = DemoSession(instruments=3, seed=3, batch=2000, reference=True)
    for i in range(8):
        now = NOW + i * 125_000_000
        commands = fast.flow.next_batch(fast.batch, now)
        assert (commands == ref.flow.next_batch(ref.batch, now)).all()
        fast_events, ref_events = fast.book.process(commands), ref.book.process(commands)
        assert (fast_events == ref_events).all()
        fast.flow.observe(fast_events)
        ref.flow.observe(ref_events)
    assert fast.book.state_hash() == ref.book.state_hash()


def test_rendered_view_shows_the_ladder_trades_and_stats() -> None:
    session = DemoSession(instruments=4, seed=2, batch=3000, reference=True)
    _run(session, 6)
    frame = session.frame()
    text = _text(render(frame))

    assert "H100-80G.us-east.20261201T00Z.24h" in text
    assert frame.watched == "H100-80G.us-east.20261201T00Z.24h"
    for price, qty, _orders in [*frame.bids.tolist(), *frame.asks.tolist()]:
        assert format_price(price) in text
        assert f"{qty:,}" in text
    assert len(frame.bids) == len(frame.asks) == 10
    # H100 trades around 2 USDC per GPU-hour: the ladder shows 1.9xx / 2.0xx prices.
    assert all(1_800_000 < p < 2_200_000 for p in frame.bids[:, 0].tolist())
    assert len(PRICE.findall(text)) >= 20 + len(frame.trades)
    assert frame.trades, "the watched instrument traded"
    for trade in frame.trades:
        assert f"{trade.side.name}" in text and format_price(trade.price) in text
    assert f"{frame.totals.trades:,}" in text
    assert f"{frame.resting:,}" in text
    for line in frame.overview:
        assert line.name in text


def test_view_fits_an_80_column_terminal() -> None:
    session = DemoSession(instruments=4, seed=4, batch=2000, reference=True)
    _run(session, 3)
    text = _text(render(session.frame()), width=80)
    assert "…" not in text, "nothing truncated at 80 columns"
    assert all(len(line) <= 80 for line in text.splitlines())


def test_cx_demo_prints_a_plain_summary_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--seconds", "1", "--reference", "--seed", "9", "--batch", "2000"])
    out = capsys.readouterr().out
    assert code == 0
    assert "H100-80G.us-east.20261201T00Z.24h" in out
    assert len(PRICE.findall(out)) >= 20
    summary = out.strip().splitlines()[-1]
    assert "ReferenceBook" in out and "seed 9" in summary
    trades = re.search(r"([\d,]+) trades", out)
    assert trades and int(trades.group(1).replace(",", "")) > 0


def test_ctrl_c_ends_the_demo_cleanly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ``--seconds``: the demo runs until SIGINT and still exits 0 with its summary.

    Ctrl-C comes once the session runs (however long a loaded machine takes to start it),
    so the test checks the running demo's exit, not an interrupted start-up."""
    running = threading.Event()
    run_for = DemoSession.run_for

    def run_for_and_tell(self: DemoSession, *args: object, **kwargs: object) -> object:
        running.set()
        return run_for(self, *args, **kwargs)

    def interrupt() -> None:
        if running.wait(timeout=240):
            threading.Event().wait(0.5)  # let it trade a little
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(DemoSession, "run_for", run_for_and_tell)
    sender = threading.Thread(target=interrupt, daemon=True)
    sender.start()
    code = main(["demo", "--reference", "--batch", "1000"])
    sender.join(timeout=5)
    assert running.is_set()
    assert code == 0
    assert "commands in" in capsys.readouterr().out


def test_cli_lists_demo_and_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as help_exit:
        main(["--help"])
    assert help_exit.value.code == 0
    assert "demo" in capsys.readouterr().out
    with pytest.raises(SystemExit) as bad_exit:
        main(["demo", "--seconds", "-1"])
    assert bad_exit.value.code == 2
    assert main(["demo", "--instruments", "2", "--select", "2", "--reference"]) == 2


def test_instrument_names_and_prices() -> None:
    instruments = demo_instruments(40)
    assert instruments[0].name == "H100-80G.us-east.20261201T00Z.24h"
    assert instruments[8].name == "H100-80G.us-west.20261201T00Z.24h"
    assert instruments[32].name == "H100-80G.us-east.20261202T00Z.24h"
    assert instruments[0].reference_price == 2_000_000
    assert len({i.name for i in instruments}) == 40
    for i in instruments:
        assert i.reference_price % i.spec.tick_size == 0


def test_money_is_formatted_exactly() -> None:
    assert format_price(2_013_000) == "2.013"
    assert format_price(1_000) == "0.001"
    assert format_price(1_000_000_000) == "1000.000"
    assert format_usdc(1_234_567_000) == "1,234.567"
    assert format_units(-1_500_000, 6, 2) == "-1.50"
    assert format_units(7, 0, 0) == "7"
    with pytest.raises(ValueError):
        format_price(2_013_500)  # off the 0.001 tick: refuse rather than round


def test_depth_bar_scales_to_the_largest_level() -> None:
    assert depth_bar(100, 100, width=10) == "█" * 10
    assert depth_bar(50, 100, width=10) == "█" * 5
    assert depth_bar(1, 100, width=10) == ""  # under an eighth of a cell
    assert depth_bar(2, 100, width=10) == "▏"
    assert depth_bar(0, 100) == depth_bar(5, 0) == ""
