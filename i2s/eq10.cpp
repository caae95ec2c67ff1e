// The second pass of Eq. 10 (i2s/eq10.py): an LSTM whose state handed on is its own output re-weighted,
// h~_t = scale_t * h_t, for many (image, song) pairs at once, forward and backward, in one C++ loop per direction.
// Why C++: at 100 pairs a step the PyTorch loop spends its time in per-op dispatch and autograd bookkeeping
// (about 25 small ops a step with the backward); here a step is one GEMM and one fused pass over the pairs.
//
// Layout (prepared by eq10.py): x D x S x T x 4H per song (W_ih x + b_ih + b_hh, gates in the order i, f, o, g,
// the g rows doubled so that one sigmoid gives tanh(g) = 2 sigmoid(2g) - 1), w D x 4H x H (g rows doubled too),
// scale D x P x T, song P (row of x), length P, pairs sorted by length, longest first: at step t the pairs still
// reading are a prefix.
#include <torch/extension.h>
#include <vector>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

namespace {

// Gradients that fade over a long lyric reach subnormal floats, which cost the CPU about 100x per operation (measured:
// 2x a whole training batch at 240 words); flush them to zero inside the kernel only, restoring the caller's mode.
struct FlushSubnormals {
#if defined(__SSE__)
  unsigned int saved = _mm_getcsr();
  FlushSubnormals() { _mm_setcsr(saved | 0x8040); }  // FTZ | DAZ
  ~FlushSubnormals() { _mm_setcsr(saved); }
#endif
};

template <typename scalar_t>
void forward_dir(const scalar_t* x, const at::Tensor& w, const scalar_t* scale, const int64_t* song,
                 const int64_t* length, int64_t P, int64_t T, int64_t H, at::Tensor& final_d,
                 at::Tensor* act, at::Tensor* cst, at::Tensor* tch, at::Tensor* hin) {
  const int64_t G = 4 * H;
  auto opts = w.options();
  at::Tensor h = at::zeros({P, H}, opts), c = at::zeros({P, H}, opts), gates = at::empty({P, G}, opts);
  at::Tensor wt = w.t();
  scalar_t* hp = h.data_ptr<scalar_t>();
  scalar_t* cp = c.data_ptr<scalar_t>();
  scalar_t* fp = final_d.data_ptr<scalar_t>();
  int64_t n = P;
  for (int64_t t = 0; t < T; ++t) {
    while (n > 0 && length[n - 1] <= t) --n;
    if (n == 0) break;
    at::Tensor gn = gates.narrow(0, 0, n), hn = h.narrow(0, 0, n);
    if (hin) hin->select(0, t).narrow(0, 0, n).copy_(hn);
    at::mm_out(gn, hn, wt);
    scalar_t* gp = gates.data_ptr<scalar_t>();
    for (int64_t p = 0; p < n; ++p) {
      const scalar_t* xr = x + (song[p] * T + t) * G;
      scalar_t* gr = gp + p * G;
      for (int64_t k = 0; k < G; ++k) gr[k] += xr[k];
    }
    gn.sigmoid_();
    if (act) act->select(0, t).narrow(0, 0, n).copy_(gn);
    for (int64_t p = 0; p < n; ++p) {
      const scalar_t* gr = gp + p * G;
      scalar_t* cr = cp + p * H;
      for (int64_t k = 0; k < H; ++k)
        cr[k] = gr[H + k] * cr[k] + gr[k] * (scalar_t(2) * gr[3 * H + k] - scalar_t(1));
    }
    at::Tensor cn = c.narrow(0, 0, n);
    if (cst) cst->select(0, t).narrow(0, 0, n).copy_(cn);
    at::Tensor tc = cn.tanh();
    if (tch) tch->select(0, t).narrow(0, 0, n).copy_(tc);
    const scalar_t* tp = tc.data_ptr<scalar_t>();
    for (int64_t p = 0; p < n; ++p) {
      const scalar_t* o = gp + p * G + 2 * H;
      const scalar_t s = scale[p * T + t];
      const bool last = length[p] - 1 == t;
      for (int64_t k = 0; k < H; ++k) {
        const scalar_t out = o[k] * tp[p * H + k];
        if (last) fp[p * H + k] = out;
        hp[p * H + k] = out * s;
      }
    }
  }
}

template <typename scalar_t>
void backward_dir(const at::Tensor& w, const scalar_t* scale, const int64_t* song, const int64_t* length,
                  int64_t P, int64_t T, int64_t H, const scalar_t* gfinal, const at::Tensor& act,
                  const at::Tensor& cst, const at::Tensor& tch, const at::Tensor& hin, scalar_t* gx,
                  at::Tensor& gw_d, scalar_t* gscale) {
  const int64_t G = 4 * H;
  auto opts = w.options();
  at::Tensor dh = at::zeros({P, H}, opts), dc = at::zeros({P, H}, opts), dgates = at::zeros({T, P, G}, opts);
  scalar_t* dhp = dh.data_ptr<scalar_t>();
  scalar_t* dcp = dc.data_ptr<scalar_t>();
  const scalar_t* ap = act.data_ptr<scalar_t>();
  const scalar_t* csp = cst.data_ptr<scalar_t>();
  const scalar_t* tcp = tch.data_ptr<scalar_t>();
  int64_t n = 0;  // pairs reading at step t; grows as t goes back
  for (int64_t t = T - 1; t >= 0; --t) {
    int64_t m = n;
    while (m < P && length[m] > t) ++m;
    // pairs whose last step is t start with no gradient from later steps
    for (int64_t p = n; p < m; ++p)
      for (int64_t k = 0; k < H; ++k) dhp[p * H + k] = dcp[p * H + k] = 0;
    n = m;
    if (n == 0) continue;
    scalar_t* dg = dgates.select(0, t).data_ptr<scalar_t>();
    for (int64_t p = 0; p < n; ++p) {
      const scalar_t* a = ap + (t * P + p) * G;
      const scalar_t* tc = tcp + (t * P + p) * H;
      const scalar_t* cprev = t > 0 ? csp + ((t - 1) * P + p) * H : nullptr;
      const scalar_t s = scale[p * T + t];
      const bool last = length[p] - 1 == t;
      scalar_t ds = 0;
      scalar_t* d = dg + p * G;
      scalar_t* gxr = gx + (song[p] * T + t) * G;
      for (int64_t k = 0; k < H; ++k) {
        const scalar_t i = a[k], f = a[H + k], o = a[2 * H + k], sg = a[3 * H + k];
        const scalar_t g = scalar_t(2) * sg - scalar_t(1);
        const scalar_t out = o * tc[k];
        ds += dhp[p * H + k] * out;
        const scalar_t dout = dhp[p * H + k] * s + (last ? gfinal[p * H + k] : scalar_t(0));
        const scalar_t dcell = dcp[p * H + k] + dout * o * (scalar_t(1) - tc[k] * tc[k]);
        const scalar_t cp = cprev ? cprev[k] : scalar_t(0);
        d[k] = dcell * g * i * (scalar_t(1) - i);
        d[H + k] = dcell * cp * f * (scalar_t(1) - f);
        d[2 * H + k] = dout * tc[k] * o * (scalar_t(1) - o);
        d[3 * H + k] = dcell * i * scalar_t(2) * sg * (scalar_t(1) - sg);
        dcp[p * H + k] = dcell * f;
        for (int64_t j = 0; j < 4; ++j) gxr[j * H + k] += d[j * H + k];
      }
      gscale[p * T + t] = ds;
    }
    if (t > 0) {
      at::Tensor dhn = dh.narrow(0, 0, n);
      at::mm_out(dhn, dgates.select(0, t).narrow(0, 0, n), w);
    }
  }
  gw_d.copy_(at::mm(dgates.reshape({T * P, G}).t(), hin.reshape({T * P, H})));
}

}  // namespace

// Returns [final D x P x H] and, with `save`, the activations the backward reads.
std::vector<at::Tensor> eq10_forward(at::Tensor x, at::Tensor w, at::Tensor scale, at::Tensor song,
                                     at::Tensor length, bool save) {
  TORCH_CHECK(x.device().is_cpu(), "i2s/eq10.cpp runs on the CPU; on a GPU use networks.rerun");
  const FlushSubnormals flush;
  const int64_t D = x.size(0), T = x.size(2), H = w.size(2), P = scale.size(1);
  at::Tensor final_ = at::zeros({D, P, H}, x.options());
  std::vector<at::Tensor> act, cst, tch, hin;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "eq10_forward", [&] {
    for (int64_t d = 0; d < D; ++d) {
      at::Tensor fd = final_.select(0, d);
      at::Tensor a, c, tc, h;
      if (save) {
        a = at::zeros({T, P, 4 * H}, x.options());
        c = at::zeros({T, P, H}, x.options());
        tc = at::zeros({T, P, H}, x.options());
        h = at::zeros({T, P, H}, x.options());
      }
      at::Tensor xd = x.select(0, d).contiguous(), sd = scale.select(0, d).contiguous();
      forward_dir<scalar_t>(xd.data_ptr<scalar_t>(), w.select(0, d), sd.data_ptr<scalar_t>(),
                            song.data_ptr<int64_t>(), length.data_ptr<int64_t>(), P, T, H, fd,
                            save ? &a : nullptr, save ? &c : nullptr, save ? &tc : nullptr, save ? &h : nullptr);
      if (save) { act.push_back(a); cst.push_back(c); tch.push_back(tc); hin.push_back(h); }
    }
  });
  if (!save) return {final_};
  return {final_, at::stack(act), at::stack(cst), at::stack(tch), at::stack(hin)};
}

// Gradients of x (D x S x T x 4H), w (D x 4H x H) and scale (D x P x T) from that of final.
std::vector<at::Tensor> eq10_backward(at::Tensor gfinal, at::Tensor x, at::Tensor w, at::Tensor scale,
                                      at::Tensor song, at::Tensor length, at::Tensor act, at::Tensor cst,
                                      at::Tensor tch, at::Tensor hin) {
  const FlushSubnormals flush;
  const int64_t D = x.size(0), T = x.size(2), H = w.size(2), P = scale.size(1);
  at::Tensor gx = at::zeros_like(x), gw = at::zeros_like(w), gs = at::zeros_like(scale);
  gfinal = gfinal.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "eq10_backward", [&] {
    for (int64_t d = 0; d < D; ++d) {
      at::Tensor gwd = gw.select(0, d), sd = scale.select(0, d).contiguous(), gfd = gfinal.select(0, d);
      at::Tensor gxd = gx.select(0, d), gsd = gs.select(0, d);
      backward_dir<scalar_t>(w.select(0, d), sd.data_ptr<scalar_t>(), song.data_ptr<int64_t>(),
                             length.data_ptr<int64_t>(), P, T, H, gfd.data_ptr<scalar_t>(), act.select(0, d),
                             cst.select(0, d), tch.select(0, d), hin.select(0, d), gxd.data_ptr<scalar_t>(), gwd,
                             gsd.data_ptr<scalar_t>());
    }
  });
  return {gx, gw, gs};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &eq10_forward, "Eq. 10 second pass, forward");
  m.def("backward", &eq10_backward, "Eq. 10 second pass, backward");
}
