/* Exact path-dependent TreeSHAP over (row, path) pairs, in two layouts.
 *
 * The same source builds two ways:
 *   - as CuPy RawKernels (NVRTC defines __CUDACC__), one per layout:
 *     `treeshap_paths` (atomic layout): one thread per (row, path) pair, launched over
 *       n_paths * n_rows threads, path-major so that the 32 threads of a warp share one path (its
 *       elements are read once, as a broadcast) and read consecutive rows of the feature-major
 *       input (coalesced); each contribution is an atomic add into phi;
 *     `treeshap_tiles` (tiled layout): a block of threads takes as many consecutive rows and a
 *       range of paths; each thread walks those paths for its own row (a warp still shares each
 *       path), adding into its own column of a tile in shared memory, and adds the column into phi
 *       at the end: one atomic add per (feature, output) and block instead of one per contribution;
 *   - as plain C for the host (gcc), `treeshap_paths_host` and `treeshap_tiles_host`, loops over
 *     the same pairs, blocks and threads. CI builds them and checks them against
 *     shap.TreeExplainer, so the kernels' algorithm and indexing are tested where no GPU is present.
 *
 * Layouts: x is feature-major, x[f * n_rows + row], in float64 (values already rounded to float32
 * as scikit-learn does). Path p's elements are path_start[p] .. path_start[p+1]-1, the first being
 * the bias element. phi is output-major, phi[(f * n_outputs + k) * n_rows + row]: threads of one
 * warp add to consecutive rows, so their atomic adds do not collide.
 */

/* MAX_PATH: the longest path this build takes, in elements (bias included); 16 or 64 (at most 64,
 * the length of the reciprocal table). The launcher builds both (-DMAX_PATH=16 and 64). In the
 * 16-element build the path code is compiled once per path length (2 to 16), so every loop has a
 * fixed trip count: unrolled, the working arrays are indexed by constants and the compiler keeps
 * them in registers; in the 64-element build they live in local memory (cached in L1) and the
 * loops run over the path's own length. */
#ifndef MAX_PATH
#define MAX_PATH 64
#endif
#define UNROLLED (MAX_PATH <= 16)
#if UNROLLED && MAX_PATH != 16
#error "the unrolled build takes paths of up to exactly 16 elements"
#endif

#ifdef __CUDACC__
#define DEVICE __device__ __forceinline__
#define CONSTANT __constant__
#define ADD(ptr, value) atomicAdd((ptr), (value))
#if UNROLLED
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("unroll 1")
#endif
#else
#define UNROLL
#define DEVICE static inline
#define CONSTANT static
#define ADD(ptr, value) (*(ptr) += (value))
#endif
typedef long long index_t;

/* RECIPROCAL[k] = 1/k. Float64 division is a slow multi-instruction sequence on a GPU; the
 * recurrences below divide only by small integers (and once per element by its zero fraction), so
 * they multiply by these instead. All threads of a warp share one path, hence one k at a time: a
 * constant-memory broadcast. */
CONSTANT const double RECIPROCAL[65] = {
    0.0, 1.0 / 1, 1.0 / 2, 1.0 / 3, 1.0 / 4, 1.0 / 5, 1.0 / 6, 1.0 / 7, 1.0 / 8,
    1.0 / 9, 1.0 / 10, 1.0 / 11, 1.0 / 12, 1.0 / 13, 1.0 / 14, 1.0 / 15, 1.0 / 16, 1.0 / 17,
    1.0 / 18, 1.0 / 19, 1.0 / 20, 1.0 / 21, 1.0 / 22, 1.0 / 23, 1.0 / 24, 1.0 / 25, 1.0 / 26,
    1.0 / 27, 1.0 / 28, 1.0 / 29, 1.0 / 30, 1.0 / 31, 1.0 / 32, 1.0 / 33, 1.0 / 34, 1.0 / 35,
    1.0 / 36, 1.0 / 37, 1.0 / 38, 1.0 / 39, 1.0 / 40, 1.0 / 41, 1.0 / 42, 1.0 / 43, 1.0 / 44,
    1.0 / 45, 1.0 / 46, 1.0 / 47, 1.0 / 48, 1.0 / 49, 1.0 / 50, 1.0 / 51, 1.0 / 52, 1.0 / 53,
    1.0 / 54, 1.0 / 55, 1.0 / 56, 1.0 / 57, 1.0 / 58, 1.0 / 59, 1.0 / 60, 1.0 / 61, 1.0 / 62,
    1.0 / 63, 1.0 / 64
};

/* One (row, path) pair of a path of `length` elements starting at `start`: adds each element's
 * contribution for every output k to out[(f * n_outputs + k) * out_stride + out_column], atomically
 * where `atomic` (phi, shared by all threads) or plainly (a thread's own column of a tile).
 * Every loop runs to `length`; where that is a compile-time constant (the 16-element build's switch
 * below), each is unrolled exactly: the arrays are indexed by constants and stay in registers, and
 * no iteration beyond the path's depth is issued under a false predicate. */
DEVICE void treeshap_path(index_t row, index_t n_rows, int path, long long start, const int length,
                          const double *x, const int *feature, const double *lower,
                          const double *upper, const double *zero, const double *values,
                          int n_outputs, double *out, index_t out_stride, index_t out_column,
                          int atomic) {
  double one[MAX_PATH];
  double pw[MAX_PATH];
  one[0] = 1.0;
  pw[0] = 1.0;
  /* EXTEND each element in turn: pw[i] is the weight of the subsets of size i. */
  UNROLL
  for (int d = 1; d < length; ++d) {
    const int f = feature[start + d];
    const double v = x[(index_t)f * n_rows + row];
    const double o = (v > lower[start + d] && v <= upper[start + d]) ? 1.0 : 0.0;
    const double scale_one = o * RECIPROCAL[d + 1];
    const double scale_zero = zero[start + d] * RECIPROCAL[d + 1];
    one[d] = o;
    pw[d] = 0.0;
    UNROLL
    for (int i = d - 1; i >= 0; --i) {
      pw[i + 1] += scale_one * (double)(i + 1) * pw[i];
      pw[i] = scale_zero * (double)(d - i) * pw[i];
    }
  }
  const int depth = length - 1;
  const double width = (double)(depth + 1);
  /* UNWOUND-SUM for each element: undo its EXTEND and sum what remains. */
  UNROLL
  for (int e = 1; e < length; ++e) {
    const double o = one[e];
    const double z = zero[start + e];
    double total = 0.0;
    if (o != 0.0) {
      const double scale_zero = z * RECIPROCAL[depth + 1];
      double next_one = pw[depth];
      UNROLL
      for (int i = depth - 1; i >= 0; --i) {
        const double tmp = next_one * width * RECIPROCAL[i + 1];
        total += tmp;
        next_one = pw[i] - tmp * scale_zero * (double)(depth - i);
      }
    } else if (z != 0.0) {
      UNROLL
      for (int i = depth - 1; i >= 0; --i) {
        total += pw[i] * RECIPROCAL[depth - i];
      }
      total *= width / z;
    }
    const double weight = total * (o - z);
    if (weight == 0.0) continue;
    const int f = feature[start + e];
    for (int k = 0; k < n_outputs; ++k) {
      double *target = &out[((index_t)f * n_outputs + k) * out_stride + out_column];
      const double contribution = weight * values[(index_t)path * n_outputs + k];
      if (atomic) {
        ADD(target, contribution);
      } else {
        *target += contribution;
      }
    }
  }
}

DEVICE void treeshap_pair(index_t row, index_t n_rows, int path, const double *x,
                          const long long *path_start, const int *feature, const double *lower,
                          const double *upper, const double *zero, const double *values,
                          int n_outputs, double *out, index_t out_stride, index_t out_column,
                          int atomic) {
  const long long start = path_start[path];
  const int length = (int)(path_start[path + 1] - start);
  if (length < 2) return; /* a single-leaf tree adds only to the expected value */
#if UNROLLED
  /* One copy of the path code per length, each with its loops' trip counts fixed. All threads of a
   * warp take the same case: they share the path. */
#define PATH_OF_LENGTH(n)                                                                          \
  case n:                                                                                          \
    treeshap_path(row, n_rows, path, start, n, x, feature, lower, upper, zero, values, n_outputs, \
                  out, out_stride, out_column, atomic);                                            \
    break;
  switch (length) {
    PATH_OF_LENGTH(2) PATH_OF_LENGTH(3) PATH_OF_LENGTH(4) PATH_OF_LENGTH(5) PATH_OF_LENGTH(6)
    PATH_OF_LENGTH(7) PATH_OF_LENGTH(8) PATH_OF_LENGTH(9) PATH_OF_LENGTH(10) PATH_OF_LENGTH(11)
    PATH_OF_LENGTH(12) PATH_OF_LENGTH(13) PATH_OF_LENGTH(14) PATH_OF_LENGTH(15) PATH_OF_LENGTH(16)
    default:
      break; /* longer paths take the 64-element build (the launcher checks) */
  }
#undef PATH_OF_LENGTH
#else
  treeshap_path(row, n_rows, path, start, length, x, feature, lower, upper, zero, values, n_outputs,
                out, out_stride, out_column, atomic);
#endif
}

/* Thread `column` of block `block` in the tiled layout. The block takes row tile
 * block % row_tiles (tile_width rows) and path chunk block / row_tiles (paths_per_block paths), so
 * blocks running together share a chunk's paths. The thread walks the chunk's paths for its row,
 * adding into its own column of the tile (tile[i * tile_width + column], i = f * n_outputs + k),
 * then adds that column into phi. */
DEVICE void treeshap_tile_thread(index_t block, int column, int tile_width, index_t n_rows,
                                 int n_paths, int paths_per_block, const double *x,
                                 const long long *path_start, const int *feature,
                                 const double *lower, const double *upper, const double *zero,
                                 const double *values, int n_outputs, int n_features, double *phi,
                                 double *tile) {
  const index_t row_tiles = (n_rows + tile_width - 1) / tile_width;
  const index_t row = (block % row_tiles) * tile_width + column;
  const index_t first = (block / row_tiles) * paths_per_block;
  if (row >= n_rows || first >= n_paths) return;
  const index_t end = first + paths_per_block;
  const int last = (int)(end < n_paths ? end : n_paths);
  const int entries = n_features * n_outputs;
  for (int i = 0; i < entries; ++i) tile[(index_t)i * tile_width + column] = 0.0;
  for (int path = (int)first; path < last; ++path) {
    treeshap_pair(row, n_rows, path, x, path_start, feature, lower, upper, zero, values, n_outputs,
                  tile, tile_width, column, 0);
  }
  for (int i = 0; i < entries; ++i) {
    const double total = tile[(index_t)i * tile_width + column];
    if (total != 0.0) ADD(&phi[(index_t)i * n_rows + row], total);
  }
}

#ifdef __CUDACC__
extern "C" __global__ void treeshap_paths(const double *x, long long n_rows, int n_paths,
                                          const long long *path_start, const int *feature,
                                          const double *lower, const double *upper,
                                          const double *zero, const double *values, int n_outputs,
                                          double *phi) {
  const index_t tid = (index_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (tid >= (index_t)n_paths * n_rows) return;
  const int path = (int)(tid / n_rows);
  const index_t row = tid % n_rows;
  treeshap_pair(row, n_rows, path, x, path_start, feature, lower, upper, zero, values, n_outputs,
                phi, n_rows, row, 1);
}

/* Launched with blockDim.x = tile_width threads and n_features * n_outputs * tile_width doubles of
 * dynamic shared memory. A thread touches only its own column of the tile: no synchronisation. */
extern "C" __global__ void treeshap_tiles(const double *x, long long n_rows, int n_paths,
                                          int paths_per_block, const long long *path_start,
                                          const int *feature, const double *lower,
                                          const double *upper, const double *zero,
                                          const double *values, int n_outputs, int n_features,
                                          double *phi) {
  extern __shared__ double tile[];
  treeshap_tile_thread((index_t)blockIdx.x, (int)threadIdx.x, (int)blockDim.x, n_rows, n_paths,
                       paths_per_block, x, path_start, feature, lower, upper, zero, values,
                       n_outputs, n_features, phi, tile);
}
#else
void treeshap_paths_host(const double *x, long long n_rows, int n_paths, const long long *path_start,
                         const int *feature, const double *lower, const double *upper,
                         const double *zero, const double *values, int n_outputs, double *phi) {
  for (int path = 0; path < n_paths; ++path) {
    for (index_t row = 0; row < n_rows; ++row) {
      treeshap_pair(row, n_rows, path, x, path_start, feature, lower, upper, zero, values,
                    n_outputs, phi, n_rows, row, 1);
    }
  }
}

/* The tiled kernel's grid, block by block and thread by thread; `tile` stands for one block's shared
 * memory (n_features * n_outputs * tile_width doubles). */
void treeshap_tiles_host(const double *x, long long n_rows, int n_paths, int paths_per_block,
                         const long long *path_start, const int *feature, const double *lower,
                         const double *upper, const double *zero, const double *values,
                         int n_outputs, int n_features, double *phi, int tile_width, double *tile) {
  const index_t row_tiles = ((index_t)n_rows + tile_width - 1) / tile_width;
  const index_t chunks = ((index_t)n_paths + paths_per_block - 1) / paths_per_block;
  for (index_t block = 0; block < row_tiles * chunks; ++block) {
    for (int column = 0; column < tile_width; ++column) {
      treeshap_tile_thread(block, column, tile_width, n_rows, n_paths, paths_per_block, x,
                           path_start, feature, lower, upper, zero, values, n_outputs, n_features,
                           phi, tile);
    }
  }
}
#endif
