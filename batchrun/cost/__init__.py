"""What a workload costs: VM prices per hour (Azure Retail Prices API or a price file) and node-hours."""
