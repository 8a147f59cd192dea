"""Notes §1 (tensor fundamentals) as executable notes: one test per claim.

Where the notes are wrong, the test asserts PyTorch's real behaviour, with a short comment.
"""

import numpy as np
import pytest
import torch

# §1.2 Scalars, vectors, matrices, tensors


def test_scalar_has_no_dimensions():
    scalar = torch.tensor(7)
    assert scalar.ndim == 0
    assert scalar.shape == torch.Size([])


def test_item_returns_the_python_number():
    value = torch.tensor(7).item()
    assert value == 7
    assert type(value) is int


def test_vector_ndim_and_shape():
    vector = torch.tensor([7, 7])
    assert vector.ndim == 1
    assert vector.shape == torch.Size([2])


def test_matrix_ndim_shape_and_first_row():
    MATRIX = torch.tensor([[7, 8], [9, 10]])
    assert MATRIX.ndim == 2
    assert MATRIX.shape == torch.Size([2, 2])
    assert torch.equal(MATRIX[0], torch.tensor([7, 8]))


def test_tensor_ndim_and_shape():
    TENSOR = torch.tensor([[[1, 2, 3], [3, 6, 9], [2, 4, 5]]])
    assert TENSOR.ndim == 3
    assert TENSOR.shape == torch.Size([1, 3, 3])


def test_rand_image_tensor_shape():
    image = torch.rand(size=(224, 224, 3))
    assert image.shape == torch.Size([224, 224, 3])
    assert image.min() >= 0 and image.max() < 1


def test_zeros_and_ones_shape_and_dtype():
    zeros = torch.zeros(size=(3, 4))
    ones = torch.ones(size=(3, 4))
    assert zeros.shape == ones.shape == torch.Size([3, 4])
    assert torch.all(zeros == 0) and torch.all(ones == 1)
    assert ones.dtype == torch.float32


def test_multiplying_by_zeros_clears_a_tensor():
    tensor = torch.rand(3, 4) + 1
    assert torch.equal(tensor * torch.zeros(size=(3, 4)), torch.zeros(3, 4))


# §1.3 Ranges, dtypes, arithmetic, aggregation


def test_arange_excludes_end():
    assert torch.equal(torch.arange(0, 4), torch.tensor([0, 1, 2, 3]))


def test_arange_start_end_step_matches_range():
    assert torch.arange(1, 20, 3).tolist() == list(range(1, 20, 3))


def test_zeros_like_copies_shape():
    one_to_four = torch.arange(0, 4)
    assert torch.equal(torch.zeros_like(input=one_to_four), torch.tensor([0, 0, 0, 0]))


def test_default_float_dtype_is_float32():
    float_32_tensor = torch.tensor([3.0, 6.0, 9.0], dtype=None, device=None, requires_grad=False)
    assert float_32_tensor.dtype == torch.float32


def test_type_changes_dtype():
    float_16_tensor = torch.tensor([3.0, 6.0, 9.0]).type(torch.float16)
    assert float_16_tensor.dtype == torch.float16
    assert torch.equal(float_16_tensor, torch.tensor([3.0, 6.0, 9.0], dtype=torch.float16))


def test_elementwise_add_subtract_multiply():
    tensor = torch.tensor([1, 2, 3])
    assert torch.equal(tensor + 10, torch.tensor([11, 12, 13]))
    assert torch.equal(torch.add(tensor, 10), torch.tensor([11, 12, 13]))
    assert torch.equal(tensor - 10, torch.tensor([-9, -8, -7]))
    assert torch.equal(tensor * 10, torch.tensor([10, 20, 30]))
    assert torch.equal(torch.mul(tensor, 10), torch.tensor([10, 20, 30]))


def test_matmul_and_at_of_vectors_give_dot_product():
    tensor = torch.tensor([1, 2, 3])
    assert torch.equal(torch.matmul(tensor, tensor), torch.tensor(14))
    assert torch.equal(tensor @ tensor, torch.tensor(14))


def test_mm_rejects_1d_tensors():
    # The notes claim torch.mm(tensor, tensor) gives 14; mm only takes 2-D matrices.
    tensor = torch.tensor([1, 2, 3])
    with pytest.raises(RuntimeError):
        torch.mm(tensor, tensor)


def test_T_transposes_a_matrix():
    matrix = torch.tensor([[1, 2, 3], [4, 5, 6]])
    assert torch.equal(matrix.T, torch.tensor([[1, 4], [2, 5], [3, 6]]))


def test_min_max_sum():
    x = torch.arange(0, 100, 10)
    assert torch.min(x) == x.min() == 0
    assert torch.max(x) == x.max() == 90
    assert torch.sum(x) == x.sum() == 450


def test_mean_needs_a_float_tensor():
    x = torch.arange(0, 100, 10)
    with pytest.raises(RuntimeError):
        torch.mean(x)
    assert torch.mean(x.type(torch.float32)) == x.type(torch.float32).mean() == 45.0


def test_argmin_argmax_give_positions():
    x = torch.arange(0, 100, 10)
    assert torch.equal(x.argmin(), torch.tensor(0))
    assert torch.equal(x.argmax(), torch.tensor(9))


# §1.4 Changing shape


def test_reshape_to_a_column():
    x = torch.arange(1.0, 11.0)
    assert x.shape == torch.Size([10])
    column = x.reshape(10, 1)
    assert column.shape == torch.Size([10, 1])
    assert torch.equal(column[:, 0], x)


def test_reshape_to_five_by_two_fills_rows():
    # The notes' shown output for reshape([5, 2]) is wrong; rows are consecutive pairs.
    x = torch.arange(1.0, 11.0)
    expected = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0], [9.0, 10.0]])
    assert torch.equal(x.reshape([5, 2]), expected)


def test_reshape_needs_a_matching_element_count():
    with pytest.raises(RuntimeError):
        torch.arange(1.0, 11.0).reshape(3, 3)


def test_view_shares_memory():
    x = torch.arange(1.0, 10.0)
    z = x.view(1, 9)
    assert z.shape == torch.Size([1, 9])
    z[:, 0] = 5
    assert x[0] == 5


def test_stack_dim0():
    x = torch.arange(1.0, 10.0)
    x_stacked = torch.stack([x, x, x, x], dim=0)
    assert x_stacked.shape == torch.Size([4, 9])
    assert all(torch.equal(row, x) for row in x_stacked)


def test_stack_dim1():
    x = torch.arange(1.0, 10.0)
    x_stacked = torch.stack([x, x, x, x], dim=1)
    assert x_stacked.shape == torch.Size([9, 4])
    assert torch.equal(x_stacked, x.unsqueeze(1).repeat(1, 4))
    assert torch.equal(x_stacked[1], torch.tensor([2.0, 2.0, 2.0, 2.0]))


def test_squeeze_removes_size_one_dims():
    z = torch.arange(1.0, 10.0).view(1, 9)
    assert z.squeeze().shape == torch.Size([9])
    assert torch.equal(z.squeeze(), torch.arange(1.0, 10.0))


def test_unsqueeze_adds_a_dim():
    squeezed = torch.arange(1.0, 10.0).view(1, 9).squeeze()
    assert squeezed.unsqueeze(dim=0).shape == torch.Size([1, 9])
    assert squeezed.unsqueeze(dim=1).shape == torch.Size([9, 1])
    assert torch.equal(squeezed.unsqueeze(dim=1)[:, 0], squeezed)


def test_permute_reorders_axes():
    x_original = torch.rand(size=(224, 224, 3))
    x_permuted = x_original.permute(2, 0, 1)
    assert x_permuted.shape == torch.Size([3, 224, 224])
    assert torch.equal(x_permuted[1], x_original[:, :, 1])


def test_permute_shares_memory():
    x_original = torch.rand(size=(224, 224, 3))
    x_permuted = x_original.permute(2, 0, 1)
    x_original[0, 0, 0] = 728218
    assert x_permuted[0, 0, 0] == 728218


def test_from_numpy_keeps_float64_but_torch_arange_is_float32():
    array = np.arange(1.0, 8.0)
    assert array.dtype == np.float64
    assert torch.from_numpy(array).dtype == torch.float64
    assert torch.arange(1.0, 8.0).dtype == torch.float32
    assert torch.from_numpy(array).type(torch.float32).dtype == torch.float32


def test_tensor_numpy_keeps_float32():
    numpy_tensor = torch.arange(1.0, 8.0).numpy()
    assert numpy_tensor.dtype == np.float32
    assert np.array_equal(numpy_tensor, np.arange(1.0, 8.0))


def test_from_numpy_shares_memory_with_the_array():
    array = np.arange(1.0, 8.0)
    tensor = torch.from_numpy(array)
    array[0] = 100.0
    assert tensor[0] == 100.0


def test_manual_seed_before_each_rand_reproduces():
    RANDOM_SEED = 42
    torch.manual_seed(RANDOM_SEED)
    random_tensor_C = torch.rand(3, 4)
    torch.manual_seed(RANDOM_SEED)
    random_tensor_D = torch.rand(3, 4)
    assert torch.equal(random_tensor_C, random_tensor_D)


def test_seeding_once_gives_different_tensors():
    # The notes seed once and claim C == D everywhere; the second draw continues the stream.
    torch.manual_seed(42)
    random_tensor_C = torch.rand(3, 4)
    random_tensor_D = torch.rand(3, 4)
    assert not torch.equal(random_tensor_C, random_tensor_D)


# §1.5 Devices


def test_tensor_defaults_to_cpu():
    assert torch.tensor([1, 2, 3]).device == torch.device("cpu")


def test_cpu_numpy_round_trip():
    numpy_back = torch.tensor([1, 2, 3]).cpu().numpy()
    assert np.array_equal(numpy_back, np.array([1, 2, 3]))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_tensor_moves_to_gpu_and_back():
    device = "cuda"
    tensor = torch.tensor([1, 2, 3])
    tensor_on_gpu = tensor.to(device)
    assert tensor_on_gpu.device.type == "cuda"
    tensor_back_on_cpu = tensor_on_gpu.cpu()
    assert tensor_back_on_cpu.device.type == "cpu"
    assert torch.equal(tensor_back_on_cpu, tensor)
    assert np.array_equal(tensor_back_on_cpu.numpy(), np.array([1, 2, 3]))
