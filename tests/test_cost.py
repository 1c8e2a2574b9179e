import numpy as np
import pytest
import torch

from workbench.measures.cost import EncoderShape, complete_flops, exit_flops, head_flops, layer_flops, measure_flops
from workbench.models.complete import CompleteModel, ModelSpec


def _batch(width, rows=3):
    return {"input_ids": torch.randint(1000, 2000, (rows, width)), "attention_mask": torch.ones(rows, width,
            dtype=torch.long), "token_type_ids": torch.zeros(rows, width, dtype=torch.long)}


@pytest.mark.parametrize("depth,width", [(1, 7), (3, 16), (6, 33)])
def test_measured_flops_of_tiny_model_equal_formula(depth, width):
    model = CompleteModel.build(ModelSpec(backbone="tiny-random-bert", depth=depth, num_labels=3,
                                          attn_implementation="eager"))
    shape = EncoderShape.of(model)
    assert (shape.hidden, shape.intermediate, shape.num_layers) == (32, 64, depth)
    expected = 3 * complete_flops(shape, depth, width, 3)
    assert measure_flops(model, _batch(width)) == pytest.approx(expected, rel=0, abs=0)


def test_formula_by_hand():
    shape = EncoderShape(hidden=4, intermediate=8, num_layers=2)
    # 2*t*(4*16 + 2*32) + 4*t*t*4 with t=2: 2*2*128 + 64 = 576
    assert layer_flops(shape, 2) == 576
    assert head_flops(shape, 2) == 2 * 16 + 2 * 8
    np.testing.assert_allclose(exit_flops(shape, [2], 2, 3), [[624, 1248, 1872]])


def test_speedup_in_flops_is_below_layer_speedup_when_heads_cost():
    shape = EncoderShape(hidden=384, intermediate=1536, num_layers=6)
    full = complete_flops(shape, 6, 30, 2)
    one_layer = complete_flops(shape, 1, 30, 2)
    assert 5.0 < full / one_layer < 6.0  # the head is paid once by both
