"""Notes §2.6 as one plain script: data, model, loop, save (the plots left out).

The whole-process baseline for ``python scripts/train.py fit --config
configs/linear.yaml``. It saves into ``models/`` under the current directory.
"""

from pathlib import Path

import torch
from torch import nn

# 2.6.1 prepare
device = "cuda" if torch.cuda.is_available() else "cpu"
print(f"Using device: {device}")

# 2.6.2 data
weight = 0.7
bias = 0.3
start = 0
end = 1
step = 0.02
X = torch.arange(start, end, step).unsqueeze(dim=1)
y = weight * X + bias
train_split = int(0.8 * len(X))
X_train, y_train = X[:train_split], y[:train_split]
X_test, y_test = X[train_split:], y[train_split:]


# 2.6.2.1 create linear model
class LinearRegressionModelV2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear_layer = nn.Linear(in_features=1, out_features=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_layer(x)


torch.manual_seed(42)
model_1 = LinearRegressionModelV2()

# 2.6.2.2 device
model_1.to(device)
X_train = X_train.to(device)
X_test = X_test.to(device)
y_train = y_train.to(device)
y_test = y_test.to(device)

# 2.6.3 training
loss_fn = nn.L1Loss()
optimizer = torch.optim.SGD(params=model_1.parameters(), lr=0.01)
torch.manual_seed(42)
epochs = 200
for epoch in range(epochs):
    model_1.train()
    y_pred = model_1(X_train)
    loss = loss_fn(y_pred, y_train)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

    model_1.eval()
    with torch.inference_mode():
        test_pred = model_1(X_test)
        test_loss = loss_fn(test_pred, y_test)

    if epoch % 10 == 0:
        print(f"Epoch: {epoch} | Loss: {loss} | Test loss: {test_loss}")

# 2.6.4 predictions (the notes plot them; the plot is left out)
model_1.eval()
with torch.inference_mode():
    y_preds = model_1(X_test)

# 2.6.5 save
MODEL_PATH = Path("models")
MODEL_PATH.mkdir(parents=True, exist_ok=True)
MODEL_SAVE_PATH = MODEL_PATH / "01_pytorch_workflow_model_1.pth"
torch.save(obj=model_1.state_dict(), f=MODEL_SAVE_PATH)
