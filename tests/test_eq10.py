"""The compiled second pass of Eq. 10 (i2s.eq10) against the PyTorch loop it replaces (networks.rerun)."""
import pytest
import torch

from i2s import eq10, networks


def _case(dtype, hidden=4, songs=3, steps=7, seed=0):
    torch.manual_seed(seed)
    cells = [torch.nn.LSTM(6, hidden, batch_first=True).to(dtype) for _ in range(2)]
    song = torch.tensor([0, 1, 2, 1, 0, 2])
    song_len = torch.tensor([steps, 4, 1])  # a one-word lyric: its only step is its last
    xproj = torch.randn(2, songs, steps, 4 * hidden, dtype=dtype, requires_grad=True)
    scale = (torch.rand(2, len(song), steps, dtype=dtype) * 2).requires_grad_()
    return cells, xproj, scale, song, song_len[song]


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_second_pass_equals_the_pytorch_loop_and_its_gradients(dtype, tol):
    cells, xproj, scale, song, lengths = _case(dtype)
    ref = networks.rerun(cells, xproj[:, song], scale, lengths)
    new = eq10.second_pass(cells, xproj, scale, song, lengths)
    assert new.shape == ref.shape
    torch.testing.assert_close(new, ref, atol=tol, rtol=tol)
    g = torch.randn_like(ref)
    params = [xproj, scale] + [p for c in cells for p in (c.weight_hh_l0, c.bias_hh_l0)]
    for a, b in zip(torch.autograd.grad((ref * g).sum(), params), torch.autograd.grad((new * g).sum(), params)):
        torch.testing.assert_close(b, a, atol=tol, rtol=tol)


def test_second_pass_passes_gradcheck():
    cells, xproj, scale, song, lengths = _case(torch.float64, hidden=3, steps=5, seed=1)
    assert torch.autograd.gradcheck(lambda x, s: eq10.second_pass(cells, x, s, song, lengths), (xproj, scale))


def test_uniform_attention_gives_back_the_plain_lstm():
    """scale = 1 everywhere hands on h_t itself: the second pass is the ordinary LSTM (what makes Eq. 10 with
    n·s_t equal Our under uniform attention)."""
    cells, xproj, scale, song, lengths = _case(torch.float64)
    x = torch.randn(3, 7, 6, dtype=torch.float64)
    fwd = cells[0]
    xp = torch.nn.functional.linear(x, fwd.weight_ih_l0, fwd.bias_ih_l0)
    pairs = torch.arange(3)
    lens = torch.tensor([7, 4, 1])
    out = eq10.second_pass([fwd], xp[None], torch.ones(1, 3, 7, dtype=torch.float64), pairs, lens)[0]
    h, _ = fwd(x)
    torch.testing.assert_close(out, h[pairs, lens - 1])


def test_a_step_after_a_pair_ends_changes_nothing():
    """What lies past a pair's length (padding) reaches neither its output nor any gradient."""
    cells, xproj, scale, song, lengths = _case(torch.float64)
    base = eq10.second_pass(cells, xproj, scale, song, lengths)
    x2, s2 = xproj.detach().clone(), scale.detach().clone()
    x2[:, 1, 4:] += 5.0      # song 1 has 4 steps
    s2[:, 1, 4:] += 5.0      # pair 1 reads song 1
    torch.testing.assert_close(eq10.second_pass(cells, x2, s2, song, lengths), base.detach())
    g = torch.autograd.grad(base.sum(), [xproj, scale])
    assert torch.all(g[0][:, 1, 4:] == 0) and torch.all(g[1][:, 1, 4:] == 0)
